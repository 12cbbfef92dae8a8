"""From a dataset folder to a model directory: load_data, build, fit (two phases), the familiarity
gate, evaluate, export.

`train_model` is what `python -m train` runs. With `fine_tune=False` it is the
head-only retrain for background use: the training photos are never decoded
when their features are in the cache, so only new photos cost backbone time.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from knyang_cam.config import TrainConfig
from knyang_cam.model_dir import ModelInfo

from . import data, evaluate, familiar, features, fit, report
from .model import Backbone, build, infer
from .export import write_model_dir


# Training photos are also kept whole with the shorter side PHOTO_SCALE x the input size, so
# that crops of down to half the shorter side are cut from real pixels, not upsampled.
PHOTO_SCALE = 2
# Fixed crops of the validation photos (other crops than the training ones): how the model does
# on parts of a scene, as a camera frames it. With the centre squares they are the set on which
# both phases keep their best epoch and the unknown threshold is chosen, because that is the kind
# of input the app classifies; the reported validation accuracy is on the centre squares alone,
# and the crops' own accuracy is reported beside it (metrics.json "validation_views").
VAL_VIEWS = (data.View(0.6), data.View(0.75, -0.5, 0.0), data.View(0.75, 0.5, 0.0),
             data.View(0.75, 0.0, -0.5), data.View(0.75, 0.0, 0.5))


@dataclass(frozen=True)
class TrainResult:
    out: Path
    val_accuracy: float
    test_accuracy: Optional[float]
    unknown_threshold: float
    skipped: tuple[tuple[Path, str], ...]
    seconds: dict  # wall time per stage
    features_computed: int  # photos that ran through the backbone for phase (a); the rest were cached


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _require_validation(images: data.Images, root: Path) -> None:
    if not len(images.labels):
        raise data.DatasetError(f"no decodable validation photos in {root}: add photos (at least two "
                                f"per class when there is no Validation folder)")


def train_model(data_dir: str | Path, out: str | Path, weights: str, cfg: TrainConfig,
                cache_dir: Optional[Path] = None, fine_tune: bool = True) -> TrainResult:
    """Train on `data_dir` and write the model directory `out` (swapped in only when complete)."""
    progress = fit.Progress()
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(now - clock, 2)
        clock = now

    dataset = data.find_images(data_dir, cfg.validation_fraction, cfg.seed)
    _log(f"dataset {dataset.root}: {len(dataset.classes)} classes ({', '.join(dataset.classes)}), "
         f"{len(dataset.train)} training and {len(dataset.validation)} validation files")
    fine_tune = fine_tune and cfg.fine_tune_epochs > 0
    size = cfg.image_size
    photo_side = PHOTO_SCALE * size
    train_images = (data.decode_split(dataset.train, dataset.classes, size, progress.counter("decode train"),
                                      photo_side=photo_side)
                    if fine_tune else None)
    val_images = data.decode_split(dataset.validation, dataset.classes, size, photo_side=photo_side)
    test_images = (data.decode_split(dataset.test, dataset.classes, size)
                   if dataset.test is not None and len(dataset.test) else None)
    # Fail on unusable data before the slow part (building the network, features).
    if train_images is not None:
        data.require_every_class(train_images.labels, dataset.classes, "training", dataset.root)
    _require_validation(val_images, dataset.root)
    lap("decode")

    fit.seed_everything(cfg.seed)
    backbone = Backbone(weights, size, cfg.alpha)
    network = build(backbone, len(dataset.classes), cfg.dropout)
    lap("build")

    cache = features.FeatureCache(cache_dir or features.default_cache_dir(), backbone.identity())
    train_feats = features.features_for(dataset.train.paths, dataset.train.labels, network.features,
                                        backbone, cache, train_images, cfg.batch_size,
                                        progress.counter("backbone features"))
    view_feats = features.view_features_for(train_feats.paths, train_feats.labels, network.features,
                                            backbone, features.TRAIN_VIEWS, photo_side, cache,
                                            train_images, cfg.batch_size, progress.counter("crop features"))
    val_feats = features.features_for(val_images.paths, val_images.labels, network.features,
                                      backbone, cache, val_images, cfg.batch_size)
    val_view_feats = features.view_features_for(val_feats.paths, val_feats.labels, network.features,
                                                backbone, VAL_VIEWS, photo_side, cache, val_images,
                                                cfg.batch_size)
    select_x = np.concatenate([val_feats.vectors, val_view_feats.vectors])
    select_y = np.concatenate([val_feats.labels, val_view_feats.labels])
    view_pixels = np.stack([data.crop_view(photo, view, size) for photo in val_images.photos
                            for view in VAL_VIEWS])
    view_labels = np.repeat(val_images.labels, len(VAL_VIEWS))
    select_pixels = np.concatenate([val_images.pixels, view_pixels])
    select_labels = np.concatenate([val_images.labels, view_labels])
    skipped = tuple(dict.fromkeys(train_feats.skipped + val_images.skipped +
                                  (test_images.skipped if test_images else ())))
    for path, why in skipped:
        _log(f"skipped {path}: {why}")
    data.require_every_class(train_feats.labels, dataset.classes, "training", dataset.root)
    lap("features")

    head_x = np.concatenate([train_feats.vectors, view_feats.vectors])
    head_y = np.concatenate([train_feats.labels, view_feats.labels])
    phases = [fit.train_head(network.head, head_x, head_y, select_x, select_y,
                             n_classes=len(dataset.classes), epochs=cfg.head_epochs,
                             learning_rate=cfg.head_learning_rate, batch_size=cfg.batch_size,
                             seed=cfg.seed, runs=cfg.head_runs, progress=progress)]
    lap("head")
    if fine_tune:
        phases.append(fit.fine_tune(network, train_images.pixels, train_images.labels, select_pixels,
                                    select_labels, n_classes=len(dataset.classes),
                                    fine_tune_at=cfg.fine_tune_at, epochs=cfg.fine_tune_epochs,
                                    learning_rate=cfg.fine_tune_learning_rate, patience=cfg.patience,
                                    batch_size=cfg.batch_size, seed=cfg.seed, progress=progress,
                                    photos=train_images.photos))
        lap("fine_tune")

    if fine_tune:  # the base changed: the cached features are not the model's any more
        corner_pixels = np.stack([data.crop_view(photo, view, size) for photo in train_images.photos
                                  for view in features.CORNERS])
        refs = [infer(network.features, pixels, cfg.batch_size) for pixels in (train_images.pixels, corner_pixels)]
        select_x = infer(network.features, select_pixels, cfg.batch_size)
    else:
        corners = features.view_features_for(train_feats.paths, train_feats.labels, network.features, backbone,
                                             features.CORNERS, photo_side, cache, train_images, cfg.batch_size)
        refs = [train_feats.vectors, corners.vectors]
    gate = familiar.fit_gate(network.model, refs, select_x)
    model = familiar.gated(network.model, gate)
    lap("familiarity")

    val_probs = infer(model, val_images.pixels, cfg.batch_size)
    val_scores = evaluate.score(val_probs, val_images.labels, dataset.classes)
    view_probs = infer(model, view_pixels, cfg.batch_size)
    view_scores = evaluate.score(view_probs, view_labels, dataset.classes)
    test_scores = None
    if test_images is not None and len(test_images.labels):
        test_scores = evaluate.score(infer(model, test_images.pixels, cfg.batch_size),
                                     test_images.labels, dataset.classes)
    threshold = evaluate.choose_threshold(np.concatenate([val_probs, view_probs]), select_labels,
                                          "validation answers (centre squares and crops)")
    lap("evaluate")
    _log("validation " + "\n".join(val_scores.lines()))
    _log(f"validation crops ({len(VAL_VIEWS)} per photo): accuracy {view_scores.accuracy:.3f}")
    if test_scores is not None:
        _log("test " + test_scores.lines()[0])

    info = ModelInfo(
        path=Path(out), classes=dataset.classes, input_size=(size, size),
        unknown_threshold=threshold.value, backbone=backbone.describe(), familiarity=gate.to_json(),
        metrics={"val_accuracy": round(val_scores.accuracy, 4),
                 "test_accuracy": round(test_scores.accuracy, 4) if test_scores else None,
                 "train_photos": len(train_feats.labels), "val_photos": len(val_images.labels)})
    extra = {"dataset": {"root": str(dataset.root), "layout": dataset.layout, "classes": list(dataset.classes),
                         "train_photos": len(train_feats.labels), "val_photos": len(val_images.labels)},
             "skipped": [{"file": str(p), "why": w} for p, w in skipped],
             "config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
             "validation_views": {
                 "accuracy": round(view_scores.accuracy, 4), "n": len(view_labels),
                 "views": [v.name for v in VAL_VIEWS],
                 "how": "fixed square crops of each validation photo (z: side as a share of the "
                        "shorter side; x, y: centre moved by that share of half the room); with the "
                        "centre squares, the set on which both phases keep their best epoch (the "
                        "curves' val_* figures) and the unknown threshold is chosen"},
             "training_views": [v.name for v in features.TRAIN_VIEWS],
             "seconds": seconds}

    def write_report(folder: Path) -> None:
        report.write_metrics(folder / report.METRICS_FILE, val_scores, threshold, phases, test_scores, extra)
        report.plot_confusion(folder / report.CONFUSION_FILE, val_scores)
        report.plot_curves(folder / report.CURVES_FILE, phases)
        report.plot_misclassified(folder / report.MISCLASSIFIED_FILE, val_images.pixels, val_images.labels,
                                  val_probs, dataset.classes, val_images.paths)

    write_model_dir(model, info, out, write_report)
    lap("export")
    return TrainResult(Path(out), val_scores.accuracy, test_scores.accuracy if test_scores else None,
                       threshold.value, skipped, seconds, train_feats.computed)
