"""Generated frames, for tests, demos and soaks."""
from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

from .base import Frame, Source


class Synthetic(Source):
    """Generated frames (a coloured background with a moving square), for tests, demos and soaks.

    Deterministic: frame i is a function of i only. `count=None` never ends.
    """

    def __init__(self, width: int = 640, height: int = 480, fps: float = 30.0,
                 count: int | None = None):
        self.name = "synthetic"
        self.size, self.fps, self._count = (width, height), float(fps), count
        gx, gy = np.meshgrid(np.linspace(40, 200, width), np.linspace(60, 180, height))
        self._base = np.dstack([gx, gy, np.full((height, width), 120.0)]).astype(np.uint8)

    def image(self, index: int) -> np.ndarray:
        """The BGR image of frame `index`; the same index always gives the same picture."""
        w, h = self.size
        image = self._base.copy()
        side = min(w, h) // 3
        x = int((w - side) * (0.5 + 0.5 * np.sin(index / 25.0)))
        y = int((h - side) * (0.5 + 0.5 * np.cos(index / 40.0)))
        cv2.rectangle(image, (x, y), (x + side, y + side), (30, 200, 240), -1)
        return image

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while self._count is None or index < self._count:
            yield Frame(index, index / self.fps, self.image(index))
            index += 1
