"""The network: MobileNetV2 base, preprocessing inside, average and max pooled features averaged
with the mirror image's, dropout, softmax head.

The model takes float32 RGB pixels in 0..255 (the model-directory contract), so
no caller can forget MobileNetV2's scaling to -1..1. The base is always called
with training=False: its BatchNorm layers keep their ImageNet statistics even
while the top of the base is fine-tuned on a few hundred photos.
"""
from __future__ import annotations

import contextlib
import os
import sys
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from knyang_cam.errors import UserError

BACKBONE = "MobileNetV2"
BASE_NAME = "backbone"
FEATURES_NAME = "features"
AVG_NAME = "avg_pool"
EXTRACTOR_NAME = "feature_extractor"
MIRROR_MEAN_NAME = "mirror_mean"
HEAD_NAME = "probs"


class WeightsError(UserError):
    """Backbone weights that cannot be had or loaded (missing file, no download, wrong shape); exit status 2."""
    pass


# What a weights file starts with: HDF5 (.weights.h5, legacy .h5; its superblock may sit after a user block of
# 512, 1024, 2048... bytes) or a zip (.keras). Checked before TensorFlow starts, which takes seconds.
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"
# --weights bundled: the base of the model that ships with the app (models/knyang/model.keras), which every
# install has, so a machine without internet and without a weights file can still train its own cats.
BUNDLED = "bundled"
NAMED_WEIGHTS = ("imagenet", "none", BUNDLED)


def check_weights_file(weights: str, option: str = "--weights", names: tuple[str, ...] = NAMED_WEIGHTS) -> None:
    """`weights` is one of `names` or a file that exists and is a weights file at all; WeightsError (one line,
    exit 2) otherwise.

    Keras finds out only after TensorFlow has started (8.5 s on a 2-core CPU): a notes file passed by mistake
    should fail at once. Whether the weights fit MobileNetV2 is still Keras' to say (build_base).
    """
    if weights in names:
        return
    give = "give a MobileNetV2 no-top .weights.h5 file" + (f", or {option} {' / '.join(names)}" if names else "")
    path = Path(weights)
    # os.path's tests: Path's raise OSError for a name over 255 bytes (a traceback where "not found" was meant).
    if os.path.isdir(path):
        raise WeightsError(f"{option} {weights} is a folder: {give}")
    if not os.path.isfile(path):
        raise WeightsError(f"{option} file not found: {weights} ({give})")
    try:
        with path.open("rb") as f:
            if f.read(len(ZIP_SIGNATURE)) == ZIP_SIGNATURE:
                return
            for offset in (0, *(512 << k for k in range(16))):
                f.seek(offset)
                if f.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                    return
    except OSError as e:
        raise WeightsError(f"cannot read {option} {weights}: {e.strerror or e}") from None
    raise WeightsError(f"{option} {weights} is not a weights file (neither HDF5 nor a .keras archive): {give}")


@dataclass(frozen=True)
class Backbone:
    """Which base network and weights: everything that decides what its features are."""

    weights: str  # "imagenet", "none", "bundled" or a file path
    image_size: int = 160
    alpha: float = 1.0

    def describe(self) -> dict:
        """The `backbone` entry of model.json."""
        return {"name": BACKBONE, "alpha": self.alpha, "weights": self._weights_label()}

    def _weights_label(self) -> str:
        if self.weights == BUNDLED:
            return bundled_label()
        if self.weights in NAMED_WEIGHTS:
            return "keras-imagenet" if self.weights == "imagenet" else "random (none)"
        return Path(self.weights).name


def build_base(backbone: Backbone):
    """The convolutional base with the requested weights; failures become one-line UserErrors."""
    import keras

    shape = (backbone.image_size, backbone.image_size, 3)
    weights = backbone.weights
    if weights == BUNDLED:
        return _bundled_base(backbone)
    if weights == "none":
        weights = None
    elif weights != "imagenet":
        check_weights_file(weights)
        weights = str(weights)
    try:
        # Keras prints "Downloading data from ..." and its progress bar on stdout, which holds only the
        # summary line; what training does goes to stderr.
        with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
            warnings.simplefilter("ignore")  # a file of another network: Keras warns once per layer it skips
            return keras.applications.MobileNetV2(input_shape=shape, alpha=backbone.alpha,
                                                  include_top=False, weights=weights, name=BASE_NAME)
    except Exception as e:  # Keras raises a zoo of types for a failed download or a bad file
        reason = (str(e).splitlines()[0] if str(e) else type(e).__name__).split(". Example error")[0].rstrip(" :.")
        if backbone.weights == "imagenet":
            raise WeightsError(f"could not get the ImageNet MobileNetV2 weights ({reason}); without "
                               f"internet pass --weights bundled (the base of the model the app ships with) "
                               f"or --weights FILE with a local no-top .weights.h5 "
                               f"(MobileNetV2 alpha {backbone.alpha}, {backbone.image_size} px, "
                               f"no top, fetched once on a machine with internet); "
                               f"--weights none is random weights, for tests only") from None
        raise WeightsError(f"cannot load weights {weights}: they are not MobileNetV2 alpha={backbone.alpha} "
                           f"no-top weights ({reason}; train.alpha sets the width)") from None


def bundled_model_file() -> Path:
    """The model.keras of the model the app ships with (the clone's, or the wheel's copy)."""
    from knyang_cam import bundled, config, model_dir

    return bundled.path(config.AppConfig().model) / model_dir.KERAS_FILE


def _bundled_backbone() -> dict:
    """The `backbone` entry of the bundled model's model.json (name, alpha, weights); ModelError where it is broken."""
    from knyang_cam import model_dir

    return model_dir.read(bundled_model_file().parent, need=(model_dir.KERAS_FILE,)).backbone


def bundled_label() -> str:
    """What model.json says of `--weights bundled`: the weights the bundled model's own base came from."""
    from knyang_cam.model_dir import ModelError

    try:
        return f"bundled model's base ({_bundled_backbone()['weights']})"
    except (ModelError, KeyError):
        return "bundled model's base"


def _bundled_base(backbone: Backbone):
    """A fresh MobileNetV2 base of `backbone`'s input size holding the bundled model's base weights."""
    import keras

    from knyang_cam.model_dir import ModelError

    file = bundled_model_file()
    reinstall = "reinstall knyang-cam, or pass --weights imagenet or a .weights.h5 FILE"
    try:
        alpha = _bundled_backbone()["alpha"]
    except (ModelError, KeyError):
        raise WeightsError(f"--weights bundled: the bundled model {file.parent} is missing or broken; "
                           f"{reinstall}") from None
    try:
        source = keras.models.load_model(file, compile=False).get_layer(EXTRACTOR_NAME).get_layer(BASE_NAME)
    except Exception as e:  # a damaged archive: Keras raises many kinds
        raise WeightsError(f"--weights bundled: cannot read {file} "
                           f"({str(e).splitlines()[0] if str(e) else type(e).__name__}); {reinstall}") from None
    if alpha != backbone.alpha:
        raise WeightsError(f"--weights bundled is MobileNetV2 alpha {alpha}: set train.alpha to {alpha} "
                           f"(it is {backbone.alpha})")
    base = keras.applications.MobileNetV2(input_shape=(backbone.image_size, backbone.image_size, 3),
                                          alpha=backbone.alpha, include_top=False, weights=None, name=BASE_NAME)
    base.set_weights(source.get_weights())
    return base


@dataclass(frozen=True)
class Network:
    """The full model and its parts, which share layers (training the head trains the model)."""

    model: object  # keras.Model: pixels 0..255 -> softmax (features of the crop and its mirror image averaged)
    base: object  # the MobileNetV2 base inside `model`
    features: object  # keras.Model: pixels 0..255 -> pooled features of one crop (what the cache stores)
    head: object  # keras.Model: pooled features -> softmax


def build(backbone: Backbone, n_classes: int, dropout: float = 0.2) -> Network:
    """MobileNetV2 base, pooled features, dropout and softmax head; the base frozen."""
    import keras

    base = build_base(backbone)
    base.trainable = False
    size = backbone.image_size
    pixels = keras.Input((size, size, 3), name="pixels")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="to_minus1_1")(pixels)
    x = base(x, training=False)
    # Average and max pooling side by side: the maximum keeps a cat's strongest evidence when the
    # crop shows only part of it or much background (a camera's view), where the mean dilutes it.
    # On a pan/zoom clip of the Validation photos it took the head from ~0.95 to ~0.97 per frame.
    pooled = keras.layers.Concatenate(name=FEATURES_NAME)([
        keras.layers.GlobalAveragePooling2D(name=AVG_NAME)(x),
        keras.layers.GlobalMaxPooling2D(name="max_pool")(x)])
    features = keras.Model(pixels, pooled, name=EXTRACTOR_NAME)
    drop, dense = head_layers(n_classes, dropout)
    feature_in = keras.Input((pooled.shape[-1],), name="pooled")
    head = keras.Model(feature_in, dense(drop(feature_in)), name="head")
    return Network(classifier(features, drop, dense), base, features, head)


def head_layers(n_classes: int, dropout: float):
    """The dropout and softmax layers of a head (HEAD_NAME names the softmax)."""
    import keras

    return keras.layers.Dropout(dropout, name="dropout"), keras.layers.Dense(n_classes, activation="softmax",
                                                                            name=HEAD_NAME)


def classifier(features, drop, dense):
    """pixels -> softmax, the crop's features averaged with its mirror image's (MIRROR_MEAN_NAME).

    A cat seen from the left is the same cat seen from the right: averaging the two views
    costs one more backbone pass per crop and steadies the answer (bench/quality.py).
    """
    import keras
    from keras import ops

    pixels = keras.Input(features.input_shape[1:], name="pixels")
    # One pass of the base over the crops and their mirror images stacked (one graph to convert).
    pooled = features(ops.concatenate([pixels, ops.flip(pixels, axis=2)], axis=0))
    pairs = ops.reshape(pooled, (2, -1, pooled.shape[-1]))
    mean = keras.layers.Identity(name=MIRROR_MEAN_NAME)(ops.mean(pairs, axis=0))
    return keras.Model(pixels, dense(drop(mean)), name="knyang")


def set_trainable_from(network: Network, fine_tune_at: int) -> None:
    """Unfreeze the base's layers from index `fine_tune_at` (BatchNorm still runs in inference mode)."""
    base = network.base
    base.trainable = True
    for layer in base.layers[:fine_tune_at]:
        layer.trainable = False


_INFER = weakref.WeakKeyDictionary()


def infer(model, x: np.ndarray, batch_size: int = 32,
          progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Run `model` over `x` in batches, inference mode, through one traced function per model.

    Keras' predict() retraces after every compile and costs seconds per call here.
    """
    import tensorflow as tf

    call = _INFER.get(model)
    if call is None:
        call = _INFER[model] = tf.function(lambda batch: model(batch, training=False),
                                           reduce_retracing=True)
    out = []
    for start in range(0, len(x), batch_size):
        out.append(call(tf.constant(x[start:start + batch_size], tf.float32)).numpy())
        if progress is not None:
            progress(min(start + batch_size, len(x)), len(x))
    return np.concatenate(out) if out else np.zeros((0,) + tuple(model.output_shape[1:]), np.float32)
