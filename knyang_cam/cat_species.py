"""The cat finder's second look: is a found box a cat, or a dog (or clutter)?

The finder's maps come from the backbone cut at stride 16, where dogs and cats are alike, so a
dog got a box (reading "unknown") in about a third of its frames. `species.tflite` (trained by
`train/species.py`) runs the whole MobileNetV2 on the box's square, as the identity model would,
and gives a logit of "a cat"; `species.json` says its input size and `cat_below`, the logit under
which a box is not a cat. The app weighs a tracked box's looks together (`regions.CatRegions`):
one look can be fooled, the mean of several seldom is. LiteRT only: no TensorFlow.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from . import bundled, litert
from .finder_model import SPECIES_FILE, SPECIES_META, FinderError


class SecondLook:
    """species.tflite on LiteRT: RGB square crops in, a logit of "a cat" per crop out."""

    def __init__(self, directory: Path, threads: int = 2):
        meta_file, file = directory / SPECIES_META, directory / SPECIES_FILE
        hint = f"rebuild it with {bundled.trainer_command('species')}"
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            side = [int(v) for v in meta["input_size"]]
            self.cat_below = float(meta["cat_below"])
            if len(side) != 2 or not all(0 < v <= 1024 for v in side) or not math.isfinite(self.cat_below):
                raise ValueError(f"input_size {meta['input_size']}, cat_below {meta['cat_below']}")
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise FinderError(f"cat finder metadata {meta_file} is missing or invalid ({e}); {hint}") from None
        self.input_size = (side[0], side[1])
        try:
            interp = litert.interpreter(file, threads)
        except ValueError as reason:
            raise FinderError(f"cannot load {file}: {reason}; {hint}") from None
        inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
        takes, gives = [int(v) for v in inp["shape"][1:]], [int(v) for v in out["shape"][1:]]
        if takes != [*self.input_size, 3] or gives != [1]:
            raise FinderError(f"{file} takes {takes} and gives {gives}, not the input_size {side} of {meta_file} "
                              f"and one logit; {hint}")
        self._run = litert.Batches(interp)

    @classmethod
    def of(cls, directory: Path, threads: int = 2) -> SecondLook | None:
        """The finder folder's second look, or None when it has none (a finder built before it)."""
        return cls(directory, threads) if (directory / SPECIES_FILE).is_file() else None

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """[N, H, W, 3] RGB uint8 crops at `input_size` -> float32 logits [N] (N may be 0)."""
        if len(crops) == 0:
            return np.zeros(0, np.float32)
        return self._run(np.ascontiguousarray(crops, np.float32)).reshape(len(crops))
