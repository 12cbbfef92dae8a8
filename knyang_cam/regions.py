"""Where to look in a frame: the centre square, or cat faces from OpenCV's cascade.

A region finder is a callable `finder(frame_bgr) -> list[Region]`; `crops` turns
the regions of one frame into one classifier batch.
"""
from __future__ import annotations

from typing import Callable, Sequence

import cv2
import numpy as np

from .config import RegionsConfig
from .results import Region

CASCADE = "haarcascade_frontalcatface.xml"
# Of a grown face box, this share of the extra height goes above the face: ears and forehead.
UPWARD_SHARE = 0.65

Finder = Callable[[np.ndarray], list]


def center_square(width: int, height: int) -> Region:
    side = min(width, height)
    return Region(((width - side) // 2, (height - side) // 2, side, side), "center")


def center_finder(frame: np.ndarray) -> list[Region]:
    return [center_square(frame.shape[1], frame.shape[0])]


def grow_box(box, expand: float, width: int, height: int) -> tuple[int, int, int, int]:
    """A square `expand` times the face's larger side, reaching more above the face than below.

    The square is shifted back inside the frame before it is clipped, so it stays square
    (the classifier's input is square) whenever the frame is large enough.
    """
    x, y, w, h = box
    side = min(int(round(max(w, h) * expand)), width, height)
    cx = x + w / 2
    top = y - (side - h) * UPWARD_SHARE
    nx = int(round(min(max(cx - side / 2, 0), width - side)))
    ny = int(round(min(max(top, 0), height - side)))
    return nx, ny, side, side


class FaceFinder:
    """Cat faces on a downscaled grey frame, detected every `detect_every` calls.

    Boxes are held between detections, so the classifier sees every frame while the
    detector (tens of ms) runs on a fraction of them. No face: the centre square.
    """

    def __init__(self, cfg: RegionsConfig):
        self._cfg = cfg
        self._cascade = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE)
        if self._cascade.empty():
            raise RuntimeError(f"OpenCV's {CASCADE} did not load (needs opencv-python 4.x)")
        self._calls = 0
        self._held: list[Region] = []

    def detect(self, frame: np.ndarray) -> list[Region]:
        height, width = frame.shape[:2]
        scale = min(1.0, self._cfg.detect_width / width)
        small = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        grey = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
        faces = self._cascade.detectMultiScale(grey, scaleFactor=self._cfg.scale_step, minNeighbors=3,
                                               minSize=(self._cfg.min_face, self._cfg.min_face))
        faces = sorted((tuple(int(v / scale) for v in f) for f in faces), key=lambda b: -b[2] * b[3])
        return [Region(grow_box(f, self._cfg.expand, width, height), "detect")
                for f in faces[:self._cfg.max_regions]]

    def __call__(self, frame: np.ndarray) -> list[Region]:
        if self._calls % self._cfg.detect_every == 0:
            self._held = self.detect(frame)
        self._calls += 1
        return self._held or center_finder(frame)


def make_finder(mode: str, cfg: RegionsConfig) -> Finder:
    return FaceFinder(cfg) if mode == "detect" else center_finder


def crops(frame: np.ndarray, regions: Sequence[Region], size: tuple[int, int]) -> np.ndarray:
    """The regions of a BGR frame as one RGB uint8 batch [N, H, W, 3] at the classifier's size."""
    h, w = size
    batch = np.empty((len(regions), h, w, 3), np.uint8)
    for i, region in enumerate(regions):
        x, y, bw, bh = region.box
        patch = frame[y:y + bh, x:x + bw]
        # INTER_AREA when shrinking avoids aliasing; the usual case is a 480px square to 160px.
        interp = cv2.INTER_AREA if bw > w else cv2.INTER_LINEAR
        cv2.cvtColor(cv2.resize(patch, (w, h), interpolation=interp), cv2.COLOR_BGR2RGB, dst=batch[i])
    return batch
