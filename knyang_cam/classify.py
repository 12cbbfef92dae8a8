"""Inference backends behind one small interface: crops in, softmax probabilities out.

Two backends read the same model directory (docs/contracts.md): LiteRT runs
`model.tflite` on the CPU (XNNPACK), TensorFlow runs `model.keras` behind one
`tf.function` for GPUs. Both take RGB pixels 0..255 because preprocessing lives
inside the network. A classifier is not thread-safe: call it from one thread.
"""
from __future__ import annotations

import glob
import os
import shutil
from typing import Protocol

import numpy as np

from . import extras, litert
from .model_dir import ModelError, ModelInfo, check_network, rebuild_hint

BACKENDS = ("auto", "litert", "tensorflow")


class Classifier(Protocol):
    """What the loop needs of a network: `classes` in output order, `input_size` (h, w), `backend`, `predict`."""

    classes: tuple[str, ...]
    input_size: tuple[int, int]  # (height, width)
    backend: str  # "litert" or "tensorflow"

    def predict(self, crops: np.ndarray) -> np.ndarray:
        """[N, H, W, 3] RGB (uint8 or float32 in 0..255) -> float32 softmax [N, C]; N may be 0."""
        ...


def _as_batch(crops: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    crops = np.asarray(crops)
    h, w = input_size
    if crops.ndim != 4 or crops.shape[1:] != (h, w, 3):
        raise ValueError(f"crops must have shape [N, {h}, {w}, 3], got {list(crops.shape)}")
    return np.ascontiguousarray(crops, dtype=np.float32)


class LiteRTClassifier:
    """model.tflite on the CPU through ai-edge-litert (XNNPACK is its default delegate)."""

    backend = "litert"

    def __init__(self, info: ModelInfo, threads: int = 2):
        self.classes = info.classes
        self.input_size = info.input_size
        file = info.tflite_path
        try:
            interp = litert.interpreter(file, threads)
        except ValueError as reason:
            raise ModelError(f"cannot load {file}: {reason} ({rebuild_hint(info.path)})") from None
        inp = interp.get_input_details()
        out = interp.get_output_details()
        if len(inp) != 1 or len(out) != 1:
            raise ModelError(f"{file} must have one input and one output, has {len(inp)} and "
                             f"{len(out)} ({rebuild_hint(info.path)})")
        check_network(info, file, inp[0]["shape_signature"], out[0]["shape_signature"])
        self._run = litert.Batches(interp)

    def predict(self, crops: np.ndarray) -> np.ndarray:
        """[N, H, W, 3] RGB 0..255 -> float32 softmax [N, C]; N may be 0; ValueError for another shape."""
        x = _as_batch(crops, self.input_size)
        n = len(x)
        if n == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        return self._run(x)


class TensorFlowClassifier:
    """model.keras behind one tf.function, for machines with a GPU.

    The input signature has an unknown batch dimension, so a single trace serves
    every batch size: no retracing per frame, and no padding to fixed buckets.
    """

    backend = "tensorflow"

    def __init__(self, info: ModelInfo):
        import keras
        import tensorflow as tf

        self.classes = info.classes
        self.input_size = info.input_size
        file = info.keras_path
        try:
            model = keras.saving.load_model(file, compile=False)
        except Exception as e:  # Keras raises many types for a damaged archive; all mean "rebuild it".
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelError(f"cannot load {file}: {reason} ({rebuild_hint(info.path)})") from None
        check_network(info, file, model.input_shape, model.output_shape)
        spec = tf.TensorSpec([None, *self.input_size, 3], tf.float32)
        self._fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])

    def tracing_count(self) -> int:
        """How often the tf.function was traced; one trace serves every batch size."""
        return self._fn.experimental_get_tracing_count()

    def predict(self, crops: np.ndarray) -> np.ndarray:
        """[N, H, W, 3] RGB 0..255 -> float32 softmax [N, C]; N may be 0; ValueError for another shape."""
        x = _as_batch(crops, self.input_size)
        if len(x) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        return np.asarray(self._fn(x), dtype=np.float32)


def gpu_likely() -> bool:
    """A cheap look for an NVIDIA GPU, so the CPU path never pays for importing TensorFlow.

    TensorFlow's pip builds only use CUDA GPUs, which show up as /dev/nvidia* device
    nodes (Linux, WSL has /dev/dxg) or an nvidia-smi on the PATH. A hit is confirmed
    by TensorFlow itself in `resolve_backend`.
    """
    return bool(glob.glob("/dev/nvidia[0-9]*") or os.path.exists("/dev/dxg")
                or shutil.which("nvidia-smi"))


def resolve_backend(backend: str = "auto") -> str:
    """'litert' or 'tensorflow' for `backend` ('auto': TensorFlow where installed and sees a GPU); else ValueError."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend != "auto":
        return backend
    if not gpu_likely() or extras.missing("tensorflow"):  # the base install has no TensorFlow
        return "litert"
    import tensorflow as tf

    return "tensorflow" if tf.config.list_physical_devices("GPU") else "litert"


def load_classifier(info: ModelInfo, backend: str = "auto", threads: int = 2) -> Classifier:
    """Load the network of `info` with `backend` (auto: TensorFlow when it sees a GPU, else LiteRT)."""
    chosen = resolve_backend(backend)
    if chosen == "tensorflow":
        extras.require_tensorflow("classifier.backend: tensorflow")
        if not info.keras_path.is_file():
            raise ModelError(f"model is missing {info.keras_path} ({rebuild_hint(info.path)})")
        return TensorFlowClassifier(info)
    if not info.tflite_path.is_file():
        raise ModelError(f"model is missing {info.tflite_path} ({rebuild_hint(info.path)})")
    return LiteRTClassifier(info, threads=threads)
