"""The two training phases.

(a) `train_head`: the softmax head on cached backbone features, several runs averaged into
    one; an epoch is a few milliseconds of matrix work, so many epochs cost nothing.
(b) `fine_tune`: the top of the base (from layer `fine_tune_at`) and the head on
    augmented photos at a low learning rate; the base stays in inference mode
    (BatchNorm statistics frozen), the weights with the lowest validation loss are
    kept, and training stops when it has not improved for `patience` epochs.

Both weight the classes inversely to their photo count (50 vs 80 photos must not
make the model prefer the larger classes) and are repeatable for a given seed.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

# Augmentation strengths for phase (b): small enough that a cat stays recognisable.
ROTATION = 0.04  # fraction of a full turn (about +-15 degrees)
ZOOM = (-0.2, 0.05)  # negative zooms in (Keras' convention); only when training on centre squares
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
        return len(self.loss)

    def to_json(self) -> dict:
        return {"epochs": self.epochs, "best_epoch": self.best_epoch, "seconds": round(self.seconds, 3),
                "loss": list(self.loss), "accuracy": list(self.accuracy),
                "val_loss": list(self.val_loss), "val_accuracy": list(self.val_accuracy)}


def seed_everything(seed: int) -> None:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def class_weights(labels: np.ndarray, n_classes: int) -> dict[int, float]:
    """n / (classes * count): every class contributes the same total weight to the loss."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    return {c: float(len(labels) / (n_classes * counts[c])) if counts[c] else 0.0 for c in range(n_classes)}


class Progress:
    """One terminal line per phase, rewritten in place (\\r), finished with a newline."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.interactive = stream.isatty()

    def line(self, text: str, final: bool = False) -> None:
        if self.interactive:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
        elif final:
            self.stream.write(text + "\n")
        self.stream.flush()

    def counter(self, what: str):
        start = time.perf_counter()

        def show(done: int, total: int) -> None:
            self.line(f"{what}: {done}/{total} ({time.perf_counter() - start:.1f} s)", final=done == total)
        return show


def _keep_best(patience: Optional[int], start_loss: float, start_weights, progress: Optional[Progress],
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


def train_head(head, x: np.ndarray, y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray, *,
               n_classes: int, epochs: int, learning_rate: float, batch_size: int = 32, seed: int = 0,
               runs: int = 1, progress: Optional[Progress] = None) -> PhaseHistory:
    """Phase (a): fit `head` (features -> [dropout] -> dense softmax) on precomputed features.

    `runs` copies of the dense layer start from its current weights and train side by
    side, each on its own shuffle and dropout; the head keeps their average, which for a
    linear softmax head is again one dense layer. The average varies less from seed to
    seed than one run does, and it named more frames of held-out photos right (4-fold
    cross-validation on clip frames of the Knyang training photos: 0.955 -> 0.960 with 5
    runs). The epoch kept is the one where the averaged head has the lowest validation
    loss, and the curves are the averaged head's: they describe the model that ships.

    A whole epoch runs inside one tf.function (Keras' fit costs ~200 ms of overhead
    per epoch here, the work itself ~1 ms). Used by the full training and, with the
    feature cache, by a head-only retrain.
    """
    import keras
    import tensorflow as tf

    dense = head.layers[-1]
    rate = next((layer.rate for layer in head.layers if isinstance(layer, keras.layers.Dropout)), 0.0)
    weights_by_class = class_weights(y, n_classes)
    xs, ys = tf.constant(x, tf.float32), tf.constant(y, tf.int32)
    ws = tf.constant([weights_by_class[int(c)] for c in y], tf.float32)
    vx, vy = tf.constant(val_x, tf.float32), tf.constant(val_y, tf.int32)
    kernel0, bias0 = dense.get_weights()
    kernels = tf.Variable(np.repeat(kernel0[None], runs, axis=0))  # [runs, features, classes]
    biases = tf.Variable(np.repeat(bias0[None], runs, axis=0))
    optimizer = keras.optimizers.Adam(learning_rate)
    optimizer.build([kernels, biases])
    noise = keras.random.SeedGenerator(seed)
    steps = -(-len(x) // batch_size)

    def measure(features, labels):
        probs = dense.activation(features @ tf.reduce_mean(kernels, 0) + tf.reduce_mean(biases, 0))
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, probs))
        hits = tf.cast(tf.equal(tf.argmax(probs, axis=1, output_type=tf.int32), labels), tf.float32)
        return loss, tf.reduce_mean(hits)

    @tf.function
    def epoch(orders):  # [runs, N]: each run's own shuffle
        for step in tf.range(steps):
            idx = orders[:, step * batch_size:(step + 1) * batch_size]
            batch = tf.gather(xs, idx)  # [runs, batch, features]
            if rate:
                batch = keras.random.dropout(batch, rate, seed=noise)
            with tf.GradientTape() as tape:
                probs = dense.activation(tf.einsum("rbf,rfc->rbc", batch, kernels) + biases[:, None])
                per_photo = keras.losses.sparse_categorical_crossentropy(tf.gather(ys, idx), probs)
                # Summed over runs: each run's gradient is its own mean loss's.
                loss = tf.reduce_sum(tf.reduce_mean(per_photo * tf.gather(ws, idx), axis=1))
            optimizer.apply(tape.gradient(loss, [kernels, biases]), [kernels, biases])
        return measure(xs, ys) + measure(vx, vy)

    rng = np.random.default_rng(seed)
    curves = {k: [] for k in ("loss", "accuracy", "val_loss", "val_accuracy")}
    best_loss, best_epoch, best_weights = np.inf, -1, [kernel0, bias0]
    start = time.perf_counter()
    for e in range(epochs):
        orders = np.stack([rng.permutation(len(x)) for _ in range(runs)])
        values = [float(v) for v in epoch(tf.constant(orders, tf.int32))]
        for k, v in zip(curves, values):
            curves[k].append(v)
        if values[2] < best_loss:
            best_loss, best_epoch = values[2], e
            best_weights = [np.mean(kernels.numpy(), axis=0), np.mean(biases.numpy(), axis=0)]
        if progress is not None and (progress.interactive or e + 1 == epochs):
            progress.line(f"head: epoch {e + 1}/{epochs} loss {values[0]:.3f} acc {values[1]:.3f} "
                          f"val_loss {values[2]:.3f} val_acc {values[3]:.3f} (best epoch {best_epoch + 1})",
                          final=e + 1 == epochs)
    dense.set_weights(best_weights)
    return PhaseHistory("head", *(tuple(curves[k]) for k in curves), best_epoch,
                        time.perf_counter() - start)


def augmenter(seed: int, zoom: bool = True):
    """Random flip, rotation, zoom (unless the crops are random already), brightness and contrast
    on 0..255 pixels."""
    import keras

    layers = [keras.layers.RandomFlip("horizontal", seed=seed),
              keras.layers.RandomRotation(ROTATION, fill_mode="reflect", seed=seed + 1)]
    if zoom:
        layers.append(keras.layers.RandomZoom(ZOOM, fill_mode="reflect", seed=seed + 2))
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
    return _augmented(ds, seed, zoom=False)


def augmented_batches(pixels: np.ndarray, labels: np.ndarray, batch_size: int, seed: int):
    """Shuffled, augmented batches from decoded images held in memory."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((pixels, labels))
    ds = ds.shuffle(len(pixels), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    return _augmented(ds, seed, zoom=True)


def _augmented(ds, seed: int, zoom: bool):
    import tensorflow as tf

    augment = augmenter(seed, zoom)

    def augment_batch(x, y):
        return augment(tf.cast(x, tf.float32), training=True), y

    ds = ds.map(augment_batch, num_parallel_calls=1, deterministic=True)
    return ds.prefetch(2)


def fine_tune(network, pixels: np.ndarray, labels: np.ndarray, val_pixels: np.ndarray,
              val_labels: np.ndarray, *, n_classes: int, fine_tune_at: int, epochs: int,
              learning_rate: float, patience: int, batch_size: int, seed: int,
              progress: Optional[Progress] = None, photos=None) -> PhaseHistory:
    """Phase (b): train the base from layer `fine_tune_at` with the head, on augmented photos.

    With `photos` (the same photos whole, data.Images.photos) every epoch sees new random
    square crops of them (CROP_SCALE, CROP_SHIFT); without, the centre squares `pixels`
    with a random zoom. Validation stays on the centre squares `val_pixels`.
    """
    from .model import set_trainable_from

    model = network.model
    start_loss = _val_loss(model, val_pixels, val_labels, batch_size)
    set_trainable_from(network, fine_tune_at)
    _compile(model, learning_rate)
    steps = -(-len(pixels) // batch_size)
    keep = _keep_best(patience, start_loss, model.get_weights(), progress, "fine-tune", epochs, steps)
    start = time.perf_counter()
    size = val_pixels.shape[1] if len(val_pixels) else pixels.shape[1]
    batches = (cropped_batches(photos, labels, size, batch_size, seed) if photos is not None
               else augmented_batches(pixels, labels, batch_size, seed))
    h = model.fit(batches, epochs=epochs, verbose=0, shuffle=False,
                  validation_data=(val_pixels.astype(np.float32), val_labels),
                  validation_batch_size=batch_size, class_weight=class_weights(labels, n_classes),
                  callbacks=[keep])
    return _history("fine-tune", h, keep.best_epoch, time.perf_counter() - start)


def _val_loss(model, pixels: np.ndarray, labels: np.ndarray, batch_size: int) -> float:
    import keras

    from .model import infer

    probs = infer(model, pixels, batch_size)
    return float(np.mean(keras.losses.sparse_categorical_crossentropy(labels, probs)))
