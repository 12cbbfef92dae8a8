"""The cat finder: one small network over the whole downscaled frame -> a box around every cat.

`models/finder/finder.tflite` is MobileNetV2 (the project's own offline backbone) cut at its
stride-16 layer, with a small convolutional head that scores every 16x16-pixel cell of the
input for "this cell is on a cat" (trained by `train/finder.py` on Oxford-IIIT Pet cats cut out
along their outline and pasted into scenes; dogs and cat-free pictures are the negatives).
`finder.json` says the input size and the score threshold, and the size of a second, finer
pass that finds the small cats the first one misses (`with_small_cats`). The finder belongs to the product,
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
from .finder_model import (
    CELL,
    META_FILE,
    TFLITE_FILE,
    Blob,
    FinderError,
    FinderMeta,
    boxes_from_scores,
    one_cat_filling,
    split_by_fine,
    with_small_cats,
)

FINDER_DIR = bundled.path(bundled.FINDER_DIR)  # the clone's, or the wheel's copy
ASPECTS = (1 / 3, 3.0)  # frames narrower or wider than these are squashed, to bound the pass's cost


class CatFinder:
    """finder.tflite on LiteRT: a BGR frame in, a Blob per cat out (largest and surest first)."""

    def __init__(self, directory: Path | str = FINDER_DIR, threads: int = 2):
        directory = Path(directory)
        self.meta = FinderMeta.read(directory / META_FILE)
        file = directory / TFLITE_FILE
        self._passes = [_Pass(file, self.meta.input_size, threads, directory)]
        if self.meta.fine_input_size is not None:
            self._passes.append(_Pass(file, self.meta.fine_input_size, threads, directory, resize=True))

    def scores(self, frame: np.ndarray) -> np.ndarray:
        """The first pass's [gh, gw, 2] maps (0..1: on a cat, a cat's centre) of a BGR frame."""
        return self._passes[0](frame)

    def __call__(self, frame: np.ndarray) -> list[Blob]:
        m = self.meta
        size = (frame.shape[1], frame.shape[0])
        maps = [p(frame) for p in self._passes]
        coarse, *fine = [boxes_from_scores(s, size, m.threshold, m.peak, m.min_cells, m.centre_peak) for s in maps]
        cover = float(np.mean(maps[0][..., 0] >= m.threshold))
        coarse = one_cat_filling(coarse, cover, m.one_cat_cover)
        if not fine:
            return coarse
        return with_small_cats(split_by_fine(coarse, fine[0], size[1], cover), fine[0], size[1], m.fine_below)


class _Pass:
    """finder.tflite at one input size: the size it was built for, or (`resize`) another. The
    network is fully convolutional, so a finer pass is the same file with its input resized, and
    each pass takes the frame's aspect, in whole cells."""

    def __init__(self, file: Path, size: tuple[int, int], threads: int, directory: Path, resize: bool = False):
        self._file = file
        try:
            self._interp = litert.interpreter(file, threads)
            inp = self._interp.get_input_details()[0]
            if resize and list(inp["shape"][1:3]) != list(size):
                self._resize(size)
        except (ValueError, RuntimeError) as reason:
            raise FinderError(f"cannot load the cat finder {file} at {size[1]}x{size[0]}: {reason}; rebuild it "
                              f"with {bundled.trainer_command('finder')}") from None
        inp, out = self._interp.get_input_details()[0], self._interp.get_output_details()[0]
        if list(inp["shape"][1:]) != [*size, 3]:
            takes = [int(v) for v in inp["shape"][1:]]
            raise FinderError(f"{file} takes {takes}, not the input_size {list(size)} that "
                              f"{directory / META_FILE} says; rebuild it with {bundled.trainer_command('finder')}")
        self._built = self._size = size
        self._in, self._out = inp["index"], out["index"]

    def _resize(self, size: tuple[int, int]) -> None:
        self._interp.resize_tensor_input(self._interp.get_input_details()[0]["index"], [1, *size, 3])
        self._interp.allocate_tensors()

    def _fit(self, frame_shape: tuple[int, ...]) -> tuple[int, int]:
        """The input size for a frame of this shape: the frame's aspect, its shorter side the
        built size's height (an upright frame gets the built size turned on its side). Squashed
        to 4:3, a 16:9 webcam's cats came out narrower than any the finder trained on and were
        missed 3-7x as often (bench/find_cats.py --size 854x480)."""
        short = self._built[0]
        aspect = min(max(frame_shape[1] / frame_shape[0], ASPECTS[0]), ASPECTS[1])
        long = max(short, round(short * max(aspect, 1 / aspect) / CELL) * CELL)
        return (short, long) if aspect >= 1 else (long, short)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        size = self._fit(frame.shape)
        if size != self._size:
            try:
                self._resize(size)
            except (ValueError, RuntimeError) as reason:
                raise FinderError(f"cannot run the cat finder {self._file} at {size[1]}x{size[0]}: {reason}") from None
            self._size = size
        h, w = size
        small = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
        x = cv2.cvtColor(small, cv2.COLOR_BGR2RGB).astype(np.float32)[None]
        self._interp.set_tensor(self._in, x)
        self._interp.invoke()
        return np.array(self._interp.get_tensor(self._out)[0])
