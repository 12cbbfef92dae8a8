"""Training's bookkeeping (seeds, progress lines, per-phase curves) and the optional phase (b).

The head itself is fitted in numpy on cached features (recipe.fit_softmax). Phase (b),
`fine_tune`, trains the top of the base (from layer `fine_tune_at`) with the head on
augmented random crops at a low learning rate; the base stays in inference mode
(BatchNorm statistics frozen), the weights with the lowest validation loss are kept, and
training stops when it has not improved for `patience` epochs. Classes are weighted
inversely to their photo count; runs are repeatable for a given seed.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np

# Augmentation strengths for phase (b): small enough that a cat stays recognisable.
ROTATION = 0.04  # fraction of a full turn (about +-15 degrees)
BRIGHTNESS = 0.2
CONTRAST = 0.2
# Random square crops of whole photos (when fine_tune gets them): the side is this share of the
# photo's shorter side, and the centre may move this share of the room the square has to move.
# A camera frame's centre square shows part of a scene, the cat rarely filling or centred in it.
CROP_SCALE = (0.5, 1.0)
CROP_SHIFT = 0.8


@dataclass(frozen=True)
class PhaseHistory:
    """Per-epoch curves of one phase, and which epoch's weights were kept (-1: the starting ones)."""

    name: str
    loss: tuple[float, ...]
    accuracy: tuple[float, ...]
    val_loss: tuple[float, ...]
    val_accuracy: tuple[float, ...]
    best_epoch: int
    seconds: float

    @property
    def epochs(self) -> int:
        """How many epochs the phase ran (the length of its curves)."""
        return len(self.loss)

    def to_json(self) -> dict:
        """The phase's entry of metrics.json: epochs, best epoch, seconds and the four curves."""
        return {"epochs": self.epochs, "best_epoch": self.best_epoch, "seconds": round(self.seconds, 3),
                "loss": list(self.loss), "accuracy": list(self.accuracy),
                "val_loss": list(self.val_loss), "val_accuracy": list(self.val_accuracy)}


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow with `seed` and make TensorFlow's ops deterministic."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


class Progress:
    """One terminal line per phase, rewritten in place (\\r), finished with a newline."""

    def __init__(self, stream=None):
        # sys.stderr when called, not when this module was imported: it may have been replaced since.
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty()

    def line(self, text: str, final: bool = False) -> None:
        """Show `text`: rewritten in place on a terminal; elsewhere written, as a line, only when `final`."""
        if self.interactive:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
        elif final:
            self.stream.write(text + "\n")
        self.stream.flush()

    def counter(self, what: str):
        """A `(done, total)` callback showing `what: done/total (seconds)`, final once done == total."""
        start = time.perf_counter()

        def show(done: int, total: int) -> None:
            self.line(f"{what}: {done}/{total} ({time.perf_counter() - start:.1f} s)", final=done == total)
        return show


def _keep_best(patience: int | None, start_loss: float, start_weights, progress: Progress | None,
               phase: str, epochs: int, steps: int):
    """A callback keeping the weights of the lowest val_loss, the starting weights included."""
    import keras

    class KeepBest(keras.callbacks.Callback):
        best_loss, best_epoch, weights, wait = start_loss, -1, start_weights, 0

        def on_train_batch_end(self, batch, logs=None):
            if progress is not None and progress.interactive:
                progress.line(f"{phase}: epoch {self.epoch + 1}/{epochs} step {batch + 1}/{steps} "
                              f"loss {logs['loss']:.3f}")

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_epoch_end(self, epoch, logs=None):
            loss = logs["val_loss"]
            if loss < self.best_loss:
                self.best_loss, self.best_epoch, self.wait = loss, epoch, 0
                self.weights = self.model.get_weights()
            else:
                self.wait += 1
                if patience is not None and self.wait >= patience:
                    self.model.stop_training = True
            if progress is not None:
                progress.line(f"{phase}: epoch {epoch + 1}/{epochs} loss {logs['loss']:.3f} "
                              f"acc {logs['accuracy']:.3f} val_loss {loss:.3f} "
                              f"val_acc {logs['val_accuracy']:.3f}",
                              final=(epoch + 1 == epochs) or self.model.stop_training)

        def on_train_end(self, logs=None):
            self.model.set_weights(self.weights)

    return KeepBest()


def _history(name: str, h, best_epoch: int, seconds: float) -> PhaseHistory:
    curves = [tuple(float(v) for v in h.history.get(k, ())) for k in ("loss", "accuracy", "val_loss", "val_accuracy")]
    return PhaseHistory(name, *curves, best_epoch, seconds)


def _compile(model, learning_rate: float) -> None:
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])


def augmenter(seed: int):
    """Random flip, rotation, brightness and contrast on 0..255 pixels."""
    import keras

    layers = [keras.layers.RandomFlip("horizontal", seed=seed),
              keras.layers.RandomRotation(ROTATION, fill_mode="reflect", seed=seed + 1)]
    layers += [keras.layers.RandomBrightness(BRIGHTNESS, value_range=(0, 255), seed=seed + 3),
               keras.layers.RandomContrast(CONTRAST, value_range=(0, 255), seed=seed + 4)]
    return keras.Sequential(layers, name="augment")


def random_views(n: int, rng: np.random.Generator):
    """`n` random square crops (data.View): side uniform in CROP_SCALE, centre anywhere within CROP_SHIFT."""
    from .data import View

    scales = rng.uniform(*CROP_SCALE, n)
    shifts = rng.uniform(-CROP_SHIFT, CROP_SHIFT, (n, 2))
    return [View(float(s), float(dx), float(dy)) for s, (dx, dy) in zip(scales, shifts)]


def cropped_batches(photos, labels: np.ndarray, size: int, batch_size: int, seed: int):
    """Shuffled, augmented batches of random square crops of whole photos, new crops every epoch.

    The crops are cut on the Python side (cv2, ~0.1 ms each) by a seeded generator
    that counts its epochs, so a run is repeatable; the rest of the augmentation runs
    in TensorFlow as for centre squares.
    """
    import tensorflow as tf

    from .data import crop_view

    labels = np.asarray(labels, np.int32)
    epoch = [0]

    def generate():
        rng = np.random.default_rng([seed, epoch[0]])
        epoch[0] += 1
        order = rng.permutation(len(photos))
        views = random_views(len(photos), rng)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            x = np.stack([crop_view(photos[i], views[j], size) for j, i in enumerate(idx, start)])
            yield x, labels[idx]

    ds = tf.data.Dataset.from_generator(generate, output_signature=(
        tf.TensorSpec((None, size, size, 3), tf.uint8), tf.TensorSpec((None,), tf.int32)))
    ds = ds.apply(tf.data.experimental.assert_cardinality(-(-len(photos) // batch_size)))
    return _augmented(ds, seed)


def _augmented(ds, seed: int):
    import tensorflow as tf

    augment = augmenter(seed)

    def augment_batch(x, y):
        return augment(tf.cast(x, tf.float32), training=True), y

    ds = ds.map(augment_batch, num_parallel_calls=1, deterministic=True)
    return ds.prefetch(2)


def fine_tune(network, dataset, cfg, progress: Progress | None = None) -> PhaseHistory:
    """Phase (b), off unless train.fine_tune_epochs: the base from layer `fine_tune_at` with the head.

    The head first learns the centre squares' features (recipe.fit_softmax), then every epoch
    sees new random square crops of the whole training photos (CROP_SCALE, CROP_SHIFT),
    augmented, at a low learning rate; the weights with the lowest validation loss (centre
    squares) are kept. The features change, so `finish` computes them again afterwards (under
    the fine-tuned extractor's own cache key) and the bundled bank of other animals no longer fits.
    """
    from .data import decode_split, require_every_class
    from .features import PHOTO_SCALE
    from .model import infer, set_trainable_from
    from .recipe import class_weights as weights_of
    from .recipe import fit_softmax

    size = cfg.image_size
    train = decode_split(dataset.train, dataset.classes, size, photo_side=PHOTO_SCALE * size)
    val = decode_split(dataset.validation, dataset.classes, size)
    require_every_class(train.labels, dataset.classes, "training", dataset.root, train.skipped, dataset.train)
    n_classes = len(dataset.classes)
    dense = network.model.get_layer("probs")
    # A head with other animals as its last class (pipeline.finish) starts with none of them: it learns them after.
    kernel, bias, _ = fit_softmax(infer(network.features, train.pixels, cfg.batch_size), train.labels, dense.units,
                                  cfg.head_l2, cfg.head_epochs, cfg.head_learning_rate)
    dense.set_weights([kernel, bias])
    model = network.model
    start_loss = _val_loss(model, val.pixels, val.labels, cfg.batch_size)
    set_trainable_from(network, cfg.fine_tune_at)
    _compile(model, cfg.fine_tune_learning_rate)
    steps = -(-len(train.labels) // cfg.batch_size)
    keep = _keep_best(cfg.patience, start_loss, model.get_weights(), progress, "fine-tune", cfg.fine_tune_epochs,
                      steps)
    start = time.perf_counter()
    weights = weights_of(train.labels, n_classes)
    h = model.fit(cropped_batches(train.photos, train.labels, size, cfg.batch_size, cfg.seed),
                  epochs=cfg.fine_tune_epochs, verbose=0, shuffle=False,
                  validation_data=(val.pixels.astype(np.float32), val.labels),
                  validation_batch_size=cfg.batch_size, class_weight=dict(enumerate(map(float, weights))),
                  callbacks=[keep])
    network.base.trainable = False
    return _history("fine-tune", h, keep.best_epoch, time.perf_counter() - start)


def _val_loss(model, pixels: np.ndarray, labels: np.ndarray, batch_size: int) -> float:
    import keras

    from .model import infer

    probs = infer(model, pixels, batch_size)
    return float(np.mean(keras.losses.sparse_categorical_crossentropy(labels, probs)))
