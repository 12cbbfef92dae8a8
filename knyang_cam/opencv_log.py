"""OpenCV's own log: its warnings are several lines each, where a user error is one."""
from __future__ import annotations

from contextlib import contextmanager

import cv2


def quiet() -> None:
    """From now on OpenCV logs only errors (`--quiet`)."""
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


@contextmanager
def silent():
    """Nothing from OpenCV while probing, opening or finalising a file: the failure is reported in our one line."""
    logging = cv2.utils.logging
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(level)
