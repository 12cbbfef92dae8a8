"""The cat finder: one small network over the whole downscaled frame -> a box around every cat.

`models/finder/finder.tflite` is MobileNetV2 (the project's own offline backbone) cut at its
stride-16 layer, with a small convolutional head that scores every 16x16-pixel cell of the
input for "this cell is on a cat" (trained by `train/finder.py` on Oxford-IIIT Pet cats cut out
along their outline and pasted into scenes; dogs and cat-free pictures are the negatives).
`finder.json` says the input size and the score threshold. The finder belongs to the product,
not to a household's identity model: every model directory is searched with the same finder.

Cells above the threshold are joined into connected blobs; a blob is one cat (or several side
by side, told apart by a second map of the cats' centres), its box the blob's extent. It runs on
LiteRT only: the live app never imports TensorFlow for it.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from . import bundled, litert
from .finder_model import META_FILE, TFLITE_FILE, Blob, FinderError, FinderMeta, boxes_from_scores

FINDER_DIR = bundled.path("models/finder")  # the clone's, or the wheel's copy


class CatFinder:
    """finder.tflite on LiteRT: a BGR frame in, a Blob per cat out (largest and surest first)."""

    def __init__(self, directory: Path | str = FINDER_DIR, threads: int = 2):
        directory = Path(directory)
        self.meta = FinderMeta.read(directory / META_FILE)
        file = directory / TFLITE_FILE
        try:
            self._interp = litert.interpreter(file, threads)
        except ValueError as reason:
            raise FinderError(f"cannot load the cat finder {file}: {reason}; rebuild it with "
                              f"python -m train.finder") from None
        inp, out = self._interp.get_input_details()[0], self._interp.get_output_details()[0]
        h, w = self.meta.input_size
        if list(inp["shape"][1:]) != [h, w, 3]:
            raise FinderError(f"{file} takes {list(inp['shape'][1:])} but {directory / META_FILE} says "
                              f"input_size {[h, w]}; rebuild it with python -m train.finder")
        self._in, self._out = inp["index"], out["index"]

    def scores(self, frame: np.ndarray) -> np.ndarray:
        """The [gh, gw, 2] maps (0..1: on a cat, a cat's centre) of a BGR frame."""
        h, w = self.meta.input_size
        small = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
        x = cv2.cvtColor(small, cv2.COLOR_BGR2RGB).astype(np.float32)[None]
        self._interp.set_tensor(self._in, x)
        self._interp.invoke()
        return np.array(self._interp.get_tensor(self._out)[0])

    def __call__(self, frame: np.ndarray) -> list[Blob]:
        m = self.meta
        return boxes_from_scores(self.scores(frame), (frame.shape[1], frame.shape[0]), m.threshold, m.peak,
                                 m.min_cells, m.centre_peak)
