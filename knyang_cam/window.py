"""The app's OpenCV window."""
from __future__ import annotations

import ctypes
import os
import sys

import cv2
import numpy as np

from .errors import UserError

WINDOW = "knyang-cam"
# OpenCV cannot tell the screen's size, and a window larger than the screen is cut off: a phone's upright
# 1080x1920 video showed its top half on a 1920x1080 screen, the bars and often the cat below the edge.
# A larger picture is shown scaled down to fit this (room for a title bar and a task bar on 1920x1080).
SHOWN_MAX = (1600, 900)


def x_server_answers() -> bool:
    """Whether the X server that DISPLAY names takes a connection: where it does not (a stale DISPLAY in tmux
    or over SSH), OpenCV's Qt prints that no platform plugin could be initialised and aborts the process."""
    try:
        xcb = ctypes.CDLL("libxcb.so.1")  # what Qt's own xcb plugin connects with
    except OSError:
        return True  # no libxcb to ask: OpenCV's window says what it can
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = (ctypes.c_char_p, ctypes.c_void_p)
    xcb.xcb_connection_has_error.argtypes = (ctypes.c_void_p,)
    xcb.xcb_disconnect.argtypes = (ctypes.c_void_p,)
    connection = xcb.xcb_connect(None, None)  # never NULL: a failed one is an error connection
    try:
        return xcb.xcb_connection_has_error(connection) == 0
    finally:
        xcb.xcb_disconnect(connection)


class Window:
    """The app's OpenCV window; raises UserError when there is no display to open it on."""

    def __init__(self):
        # opencv-python's window is Qt's with its X11 plugin alone: under Wayland it is XWayland's, in DISPLAY.
        if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
            raise UserError("no display to open a window on (DISPLAY is not set); use --headless")
        if sys.platform.startswith("linux") and not x_server_answers():
            raise UserError(f"cannot open a window on display {os.environ['DISPLAY']} (DISPLAY): no X server takes "
                            f"the connection there (SSH without -X, a desktop session that ended); use --headless")
        # GUI_NORMAL: just the picture, without the Qt toolbar of zoom and save buttons.
        cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
        self.shown = False

    def show(self, image: np.ndarray) -> None:
        """Put `image` (BGR) in the window, scaled down to fit SHOWN_MAX; it is painted at the next cv2.waitKeyEx."""
        h, w = image.shape[:2]
        scale = min(SHOWN_MAX[0] / w, SHOWN_MAX[1] / h)
        if scale < 1:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        cv2.imshow(WINDOW, image)
        self.shown = True

    def closed(self) -> bool:
        """The user closed the window with the title bar's button."""
        if not self.shown:
            return False
        try:
            return cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:
            # OpenCV's Qt backend drops its GUI with the last window the window manager closed, and then
            # raises ("NULL guiReceiver") for it: the window is gone, which ends the run like `q`.
            return True

    def close(self) -> None:
        """Destroy the window; the run's ExitStack calls it once, at the end."""
        try:
            cv2.destroyWindow(WINDOW)
        except cv2.error:
            pass  # already closed by the window manager (see closed): nothing left to destroy
