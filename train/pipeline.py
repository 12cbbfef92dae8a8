"""From a dataset folder to a model directory: load_data, build, fit (two phases), evaluate, export.

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

from knyang_cam.config import TrainConfig
from knyang_cam.model_dir import ModelInfo

from . import data, evaluate, features, fit, report
from .model import Backbone, build, infer
from .export import write_model_dir


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
    train_images = (data.decode_split(dataset.train, dataset.classes, size, progress.counter("decode train"))
                    if fine_tune else None)
    val_images = data.decode_split(dataset.validation, dataset.classes, size)
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
    val_feats = features.features_for(val_images.paths, val_images.labels, network.features,
                                      backbone, cache, val_images, cfg.batch_size)
    skipped = tuple(dict.fromkeys(train_feats.skipped + val_images.skipped +
                                  (test_images.skipped if test_images else ())))
    for path, why in skipped:
        _log(f"skipped {path}: {why}")
    data.require_every_class(train_feats.labels, dataset.classes, "training", dataset.root)
    lap("features")

    phases = [fit.train_head(network.head, train_feats.vectors, train_feats.labels, val_feats.vectors,
                             val_feats.labels, n_classes=len(dataset.classes), epochs=cfg.head_epochs,
                             learning_rate=cfg.head_learning_rate, batch_size=cfg.batch_size,
                             seed=cfg.seed, progress=progress)]
    lap("head")
    if fine_tune:
        phases.append(fit.fine_tune(network, train_images.pixels, train_images.labels, val_images.pixels,
                                    val_images.labels, n_classes=len(dataset.classes),
                                    fine_tune_at=cfg.fine_tune_at, epochs=cfg.fine_tune_epochs,
                                    learning_rate=cfg.fine_tune_learning_rate, patience=cfg.patience,
                                    batch_size=cfg.batch_size, seed=cfg.seed, progress=progress))
        lap("fine_tune")

    val_probs = infer(network.model, val_images.pixels, cfg.batch_size)
    val_scores = evaluate.score(val_probs, val_images.labels, dataset.classes)
    test_scores = None
    if test_images is not None and len(test_images.labels):
        test_scores = evaluate.score(infer(network.model, test_images.pixels, cfg.batch_size),
                                     test_images.labels, dataset.classes)
    threshold = evaluate.choose_threshold(val_probs, val_images.labels)
    lap("evaluate")
    _log("validation " + "\n".join(val_scores.lines()))
    if test_scores is not None:
        _log("test " + test_scores.lines()[0])

    info = ModelInfo(
        path=Path(out), classes=dataset.classes, input_size=(size, size),
        unknown_threshold=threshold.value, backbone=backbone.describe(),
        metrics={"val_accuracy": round(val_scores.accuracy, 4),
                 "test_accuracy": round(test_scores.accuracy, 4) if test_scores else None,
                 "train_photos": len(train_feats.labels), "val_photos": len(val_images.labels)})
    extra = {"dataset": {"root": str(dataset.root), "layout": dataset.layout, "classes": list(dataset.classes),
                         "train_photos": len(train_feats.labels), "val_photos": len(val_images.labels)},
             "skipped": [{"file": str(p), "why": w} for p, w in skipped],
             "config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
             "seconds": seconds}

    def write_report(folder: Path) -> None:
        report.write_metrics(folder / report.METRICS_FILE, val_scores, threshold, phases, test_scores, extra)
        report.plot_confusion(folder / report.CONFUSION_FILE, val_scores)
        report.plot_curves(folder / report.CURVES_FILE, phases)
        report.plot_misclassified(folder / report.MISCLASSIFIED_FILE, val_images.pixels, val_images.labels,
                                  val_probs, dataset.classes, val_images.paths)

    write_model_dir(network.model, info, out, write_report)
    lap("export")
    return TrainResult(Path(out), val_scores.accuracy, test_scores.accuracy if test_scores else None,
                       threshold.value, skipped, seconds, train_feats.computed)
