"""Head-only retrain of an existing model on a grown dataset: what the live app runs in the background.

Features come from the *current* model's own feature extractor (its possibly
fine-tuned base), not from the original backbone, so the new model keeps what
fine-tuning taught the old one and only the softmax head changes. Since every
retrain keeps that extractor, the feature cache (keyed by the extractor's
weights) stays valid from one retrain to the next: only new photos cost backbone
time. The head may grow when the dataset has new class folders; rows of classes
the old head knew start from their old weights.

The new model is accepted only when its validation accuracy is not worse than
the current model's on the same validation photos by more than `max_drop`; a
refused model is still written (as `<out>-refused`) so the user can look at it.

`python -m train.retrain --model DIR --data DIR --out DIR` prints one JSON object
per line on stdout (knyang_cam.events: progress, then done or error) for the app to read.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from knyang_cam import config as config_mod
from knyang_cam import events, model_dir
from knyang_cam.config import TrainConfig
from knyang_cam.errors import UserError
from knyang_cam.model_dir import ModelError, ModelInfo

from . import data, evaluate, familiar, features, fit, report
from .export import write_model_dir
from .model import AVG_NAME, FEATURES_NAME, Backbone
from .pipeline import PHOTO_SCALE, VAL_VIEWS

HEAD_NAME = "probs"
Report = Callable[[dict], None]


@dataclass(frozen=True)
class RetrainResult:
    out: str  # the model directory written (ends in -refused when not accepted)
    accepted: bool
    reason: str
    classes: tuple[str, ...]
    old_accuracy: float  # the current model on this validation split (new classes count as misses)
    new_accuracy: float
    features_computed: int  # crops that ran through the backbone; the rest came from the cache
    seconds: float


class _StatusLines:
    """Adapts fit.Progress's line interface to JSON progress events."""

    interactive = True

    def __init__(self, emit: Report, phase: str):
        self.emit, self.phase = emit, phase

    def line(self, text: str, final: bool = False) -> None:
        self.emit(events.progress(self.phase, text))


def _extractor_identity(extractor) -> str:
    # Weightless layers (pooling) change the features too: their kinds and names are hashed with the weights.
    digest = hashlib.sha256(repr([(type(layer).__name__, layer.name) for layer in extractor.layers]).encode())
    for w in extractor.get_weights():
        digest.update(np.ascontiguousarray(w).tobytes())
    return f"extractor-{digest.hexdigest()[:20]}-s{extractor.input_shape[1]}-d{extractor.output_shape[-1]}"


def _old_accuracy(old_dense, old_classes: Sequence[str], vectors: np.ndarray, labels: np.ndarray,
                  classes: Sequence[str]) -> float:
    """Accuracy of the current model's head on the same validation features, by class name."""
    probs = np.asarray(old_dense(vectors))
    predicted = [old_classes[i] for i in probs.argmax(axis=1)]
    return float(np.mean([p == classes[t] for p, t in zip(predicted, labels)])) if len(labels) else 0.0


def _grown_head(old_dense, old_classes: Sequence[str], classes: Sequence[str], dim: int, dropout: float):
    """A fresh dropout + softmax head for `classes`, warm-started from the old head's known rows."""
    import keras

    dense = keras.layers.Dense(len(classes), activation="softmax", name=HEAD_NAME)
    dense.build((None, dim))
    kernel, bias = (np.array(v) for v in dense.get_weights())
    old_kernel, old_bias = old_dense.get_weights()
    for j, name in enumerate(classes):
        if name in old_classes:
            i = old_classes.index(name)
            kernel[:, j], bias[j] = old_kernel[:, i], old_bias[i]
    dense.set_weights([kernel, bias])
    drop = keras.layers.Dropout(dropout, name="dropout")
    feature_in = keras.Input((dim,), name="pooled")
    return drop, dense, keras.Model(feature_in, dense(drop(feature_in)), name="head")


def retrain(current: str | Path, data_dir: str | Path, out: str | Path, cfg: TrainConfig,
            max_drop: float = 0.02, cache_dir: Optional[Path] = None,
            emit: Report = lambda event: None) -> RetrainResult:
    import keras

    start = time.perf_counter()
    info = model_dir.read(current, need=(model_dir.KERAS_FILE,))
    model = keras.models.load_model(info.keras_path, compile=False)
    try:
        pooled = model.get_layer(FEATURES_NAME).output
        old_dense = model.get_layer(HEAD_NAME)
        model.get_layer(AVG_NAME)  # the familiarity gate's input
    except ValueError:
        raise ModelError(f"{info.keras_path} has no '{FEATURES_NAME}'/'{HEAD_NAME}'/'{AVG_NAME}' layers, so "
                         f"its head cannot be retrained alone: {model_dir.rebuild_hint(info.path)}") from None
    extractor = keras.Model(model.inputs, pooled, name="feature_extractor")
    size = info.input_size[0]

    dataset = data.find_images(data_dir, cfg.validation_fraction, cfg.seed)
    emit(events.progress("features", f"features: {len(dataset.train) + len(dataset.validation)} photos, "
                                     f"{len(dataset.classes)} classes"))
    cache = features.FeatureCache(cache_dir or features.default_cache_dir(), _extractor_identity(extractor))
    shape = Backbone(weights=str(info.keras_path), image_size=size)

    def progress(name):
        def show(done, total):
            emit(events.progress("features", f"features ({name}): {done}/{total} new"))
        return show

    def feats(split, name):
        return features.features_for(split.paths, split.labels, extractor, shape, cache,
                                     batch_size=cfg.batch_size, progress=progress(name))

    def crops(f, views, name):
        return features.view_features_for(f.paths, f.labels, extractor, shape, views, PHOTO_SCALE * size, cache,
                                          batch_size=cfg.batch_size, progress=progress(name))

    train_f, val_f = feats(dataset.train, "train"), feats(dataset.validation, "validation")
    data.require_every_class(train_f.labels, dataset.classes, "training", dataset.root)
    if not len(val_f.labels):
        raise data.DatasetError(f"no decodable validation photos in {dataset.root}")
    # As in full training: the familiarity gate's references and the set its cut and the
    # unknown threshold are chosen on (new photos and new cats become familiar here).
    corners = crops(train_f, features.CORNERS, "train corners")
    val_views = crops(val_f, VAL_VIEWS, "validation crops")
    select_x = np.concatenate([val_f.vectors, val_views.vectors])
    select_y = np.concatenate([val_f.labels, val_views.labels])

    fit.seed_everything(cfg.seed)
    dim = train_f.vectors.shape[1]
    drop, dense, head = _grown_head(old_dense, info.classes, dataset.classes, dim, cfg.dropout)
    history = fit.train_head(head, train_f.vectors, train_f.labels, val_f.vectors, val_f.labels,
                             n_classes=len(dataset.classes), epochs=cfg.head_epochs,
                             learning_rate=cfg.head_learning_rate, batch_size=cfg.batch_size,
                             seed=cfg.seed, runs=cfg.head_runs, progress=_StatusLines(emit, "head"))

    val_probs = np.asarray(head(val_f.vectors, training=False))
    scores = evaluate.score(val_probs, val_f.labels, dataset.classes)
    old_acc = _old_accuracy(old_dense, info.classes, val_f.vectors, val_f.labels, dataset.classes)
    accepted = scores.accuracy >= old_acc - max_drop
    reason = (f"validation accuracy {scores.accuracy:.3f} vs current {old_acc:.3f} "
              f"({'accepted' if accepted else f'refused: worse by more than {max_drop:.3f}'})")
    full = keras.Model(model.inputs, dense(drop(pooled)), name="knyang")
    gate = familiar.fit_gate(full, [train_f.vectors, corners.vectors], select_x)
    threshold = evaluate.choose_threshold(gate.shrink(np.asarray(head(select_x, training=False)), select_x),
                                          select_y, "validation answers (centre squares and crops)")

    out = Path(out)
    if not accepted:
        out = out.with_name(out.name + "-refused")
    new_info = ModelInfo(path=out, classes=dataset.classes, input_size=info.input_size,
                         unknown_threshold=threshold.value, familiarity=gate.to_json(),
                         backbone={**info.backbone, "retrained_from": str(info.path)},
                         metrics={"val_accuracy": round(scores.accuracy, 4), "test_accuracy": None,
                                  "previous_val_accuracy": round(old_acc, 4),
                                  "train_photos": len(train_f.labels), "val_photos": len(val_f.labels)})
    computed = sum(f.computed for f in (train_f, val_f, corners, val_views))
    extra = {"retrain": {"from": str(info.path), "data": str(dataset.root), "accepted": accepted,
                         "reason": reason, "features_computed": computed}}
    emit(events.progress("export", f"export: {reason}"))
    write_model_dir(familiar.gated(full, gate), new_info, out,
                    lambda folder: report.write_metrics(folder / report.METRICS_FILE, scores, threshold,
                                                        [history], None, extra))
    return RetrainResult(str(out), accepted, reason, dataset.classes, round(old_acc, 4),
                         round(scores.accuracy, 4), computed,
                         round(time.perf_counter() - start, 2))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train.retrain",
                                description="Retrain only the head of MODEL on DATA (JSON lines on stdout).")
    p.add_argument("--model", required=True, help="current model directory")
    p.add_argument("--data", required=True, help="dataset folder (both layouts of `python -m train`)")
    p.add_argument("--out", required=True, help="new model directory (refused models get -refused)")
    p.add_argument("--config", help="config.yaml (its train: section is used)")
    p.add_argument("--max-drop", type=float, default=0.02,
                   help="refuse the new model if its validation accuracy is lower by more than this")
    p.add_argument("--cache", help="feature cache folder (default: train.feature_cache, else "
                                   "~/.cache/knyang-cam/features)")
    p.add_argument("--threads", type=int, default=0,
                   help="TensorFlow CPU threads (0: all; the app passes 0 and lowers the priority instead)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)

    try:
        cfg = config_mod.load(args.config).train
        if args.threads:
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(args.threads)
            tf.config.threading.set_inter_op_parallelism_threads(args.threads)
        cache = args.cache or cfg.feature_cache
        result = retrain(args.model, args.data, args.out, cfg, args.max_drop,
                         Path(os.path.expanduser(cache)) if cache else None, events.write)
    except UserError as e:
        events.write(events.error(str(e)))
        print(f"error: {e}", file=sys.stderr)
        return 2
    events.write(events.done(**asdict(result)))
    return 0 if result.accepted else 1


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
