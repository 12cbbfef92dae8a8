"""The window closed by the window manager: OpenCV's Qt backend then raises for it instead of answering."""
from __future__ import annotations

import cv2
import pytest

from knyang_cam.window import Window


def _gone(*_args):
    raise cv2.error("OpenCV(4.14.0) window_QT.cpp:179: error: (-27:Null pointer) NULL guiReceiver "
                    "(please create a window) in function 'cvGetPropVisible_QT'")


def test_a_window_closed_by_the_window_manager_reads_closed_and_closes_quietly(monkeypatch):
    # Closing the window from its title bar ended the run with a traceback and exit status 1 (under Xvfb,
    # a WM_DELETE_WINDOW message to the Qt window), and the run's video and log were discarded.
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr("knyang_cam.window.x_server_answers", lambda: True)
    monkeypatch.setattr(cv2, "namedWindow", lambda *a: None)
    window = Window()
    window.shown = True
    monkeypatch.setattr(cv2, "getWindowProperty", _gone)
    monkeypatch.setattr(cv2, "destroyWindow", _gone)
    assert window.closed()
    window.close()


def test_a_window_not_shown_yet_is_not_closed(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr("knyang_cam.window.x_server_answers", lambda: True)
    monkeypatch.setattr(cv2, "namedWindow", lambda *a: None)
    monkeypatch.setattr(cv2, "getWindowProperty", pytest.fail)
    assert not Window().closed()
