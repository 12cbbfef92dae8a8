"""One LiteRT loader for every network the project runs on the CPU: the classifier, the cat finder and
the live retrain's feature extractor (train/tflite_edit.py). No TensorFlow here."""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import numpy as np

from .paths import utf8_name


@contextlib.contextmanager
def native_stderr_silenced():
    """Mute file descriptor 2 while LiteRT starts.

    Its C++ side prints "INFO: Created TensorFlow Lite XNNPACK delegate" (and, for a
    bad file, its own diagnostics) straight to fd 2, which would break the one-line
    error contract; a failure is still reported, by the caller.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def interpreter(model: Path | bytes, threads: int):
    """A LiteRT interpreter of a .tflite file (or its bytes) with its tensors allocated, started without
    LiteRT's own lines on stderr; raises ValueError with the first line of why it did not load."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        if not isinstance(model, bytes) and not utf8_name(model):
            model = Path(model).read_bytes()  # LiteRT takes such a path for a TypeError
        source = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
        with native_stderr_silenced():
            interp = Interpreter(**source, num_threads=threads)
            interp.allocate_tensors()
        return interp
    except (ValueError, RuntimeError, OSError) as e:
        raise ValueError(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__) from None


class Batches:
    """An interpreter's one input fed batches of any size: its tensors are re-planned (about a millisecond)
    only when the batch size changes."""

    def __init__(self, interp):
        self.interp = interp
        inp = interp.get_input_details()[0]
        self._in, self._out = inp["index"], interp.get_output_details()[0]["index"]
        self._batch = int(inp["shape"][0])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """A contiguous float32 batch [N, ...] (N > 0) -> the network's output for it, float32; ValueError or
        RuntimeError from LiteRT for a shape the network was not made for."""
        if len(x) != self._batch:
            self.interp.resize_tensor_input(self._in, list(x.shape))
            self.interp.allocate_tensors()
            self._batch = len(x)
        self.interp.set_tensor(self._in, x)
        self.interp.invoke()
        return np.array(self.interp.get_tensor(self._out), np.float32)
