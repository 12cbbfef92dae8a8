"""Shared fixtures: a tiny real model directory, and the ../shared paths (skipped when absent)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SHARED_DATA = SHARED / "data" / "knyang"
SHARED_WEIGHTS = SHARED / "weights" / "mobilenet_v2_1.0_160_no_top.weights.h5"
TINY_CLASSES = ("Alpha", "Beta", "Gamma")


def build_tiny_model(n_classes: int = 3, size: int = 64, seed: int = 0):
    """A small real Keras network with the model-directory input contract (RGB 0..255 in)."""
    import keras

    from train.model import AVG_NAME, EXTRACTOR_NAME, FEATURES_NAME, classifier, head_layers

    keras.utils.set_random_seed(seed)
    inp = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inp)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    # Shaped like train.model's network (extractor, mirror mean, head), so train.retrain can retrain its head.
    pooled = keras.layers.Concatenate(name=FEATURES_NAME)([keras.layers.GlobalAveragePooling2D(name=AVG_NAME)(x),
                                                          keras.layers.GlobalMaxPooling2D()(x)])
    drop, dense = head_layers(n_classes, 0.0)
    return classifier(keras.Model(inp, pooled, name=EXTRACTOR_NAME), drop, dense)


def make_model_dir(out: Path, classes=TINY_CLASSES, size: int = 64, threshold: float = 0.6) -> Path:
    from knyang_cam.model_dir import ModelInfo
    from train.export import write_model_dir

    info = ModelInfo(path=out, classes=tuple(classes), input_size=(size, size),
                     unknown_threshold=threshold,
                     backbone={"name": "tiny-test-net", "alpha": 1.0, "weights": "random"})
    return write_model_dir(build_tiny_model(len(classes), size), info, out)


def make_colour_model_dir(out: Path) -> Path:
    """A real network with answers known by construction: it averages the picture's colour and
    names the dominant channel (red -> Alpha, green -> Beta, blue -> Gamma)."""
    import keras

    from knyang_cam.model_dir import ModelInfo
    from train.export import write_model_dir

    inp = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inp)
    x = keras.layers.GlobalAveragePooling2D(name="features")(x)
    probs = keras.layers.Dense(3, activation="softmax", name="probs")
    out_t = probs(x)
    probs.set_weights([np.eye(3, dtype=np.float32) * 12.0, np.zeros(3, np.float32)])
    info = ModelInfo(path=out, classes=("Alpha", "Beta", "Gamma"), input_size=(32, 32),
                     unknown_threshold=0.6, backbone={"name": "mean-colour", "weights": "by hand"})
    return write_model_dir(keras.Model(inp, out_t), info, out)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A real model directory (keras + tflite + json) with 3 classes at 64x64, built once."""
    return make_model_dir(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared dataset not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def shared_weights() -> Path:
    if not SHARED_WEIGHTS.is_file():
        pytest.skip(f"shared backbone weights not found at {SHARED_WEIGHTS}")
    return SHARED_WEIGHTS
