"""The model a bench of scenes made from the shared Validation photos measures: never one that learnt them.

The bundled model learnt those photos once they were scored (`train.learn_validation`: other days of
Chungdam, whose training photos are one afternoon). Its scores on scenes of them would be
memories, so such a bench measures its twin: the same recipe and settings on the Train photos alone,
built once into build/bench/ (about 3 minutes with an empty feature cache, seconds after `python -m
train` filled it) and built again when the model is newer than it or was made with other settings.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from shared_paths import WEIGHTS_DIR

from knyang_cam import model_dir
from knyang_cam.__main__ import resolve
from train import report
from train.model import BUNDLED, bundled_label

ROOT = Path(__file__).resolve().parent.parent
# What the twin's recipe may differ in: where features are cached, and what it is for.
NOT_RECIPE = ("feature_cache", "learn_validation")


def _recipe(metrics: dict) -> dict:
    return {k: v for k, v in metrics.get("config", {}).items() if k not in NOT_RECIPE}


def _twin_is_current(twin: Path, info: model_dir.ModelInfo, recipe: dict) -> bool:
    try:
        made = model_dir.read(twin)
    except model_dir.ModelError:
        return False
    metrics = report.read(twin)
    return not metrics.get("validation_learnt") and _recipe(metrics) == recipe and made.created >= info.created


def for_scenes(path: str) -> model_dir.ModelInfo:
    """The model at `path`, or its twin trained without the Validation folder when it learnt that folder (not a
    split it made, whose photos no bench plays)."""
    info = model_dir.read(resolve(path))
    metrics = report.read(info.path)
    if not (metrics.get("validation_learnt") and metrics.get("dataset", {}).get("layout") == "split"):
        return info
    twin = ROOT / "build" / "bench" / f"{info.path.name}-without-validation"
    recipe = _recipe(metrics)
    if not _twin_is_current(twin, info, recipe):
        data = Path(metrics["dataset"]["root"])
        data = data if data.is_absolute() else ROOT / data  # as python -m train stored it, run from the clone
        label = info.backbone.get("weights", "")
        # A model trained with --weights bundled says so (model.bundled_label()); its twin takes the same base.
        weights = BUNDLED if label == bundled_label() else WEIGHTS_DIR / label
        for need in (data,) if weights == BUNDLED else (data, weights):
            if not need.exists():
                raise SystemExit(f"error: {info.path} learnt the Validation photos these scenes are made of, and "
                                 f"its twin without them cannot be built: {need} not found")
        print(f"{info.path} learnt the Validation photos these scenes are made of: training its twin without them "
              f"into {twin}", file=sys.stderr, flush=True)
        config = twin.parent / f"{twin.name}.yaml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(json.dumps({"train": {**recipe, "learn_validation": False}}))
        subprocess.run([sys.executable, "-m", "train", "--data", str(data), "--weights", str(weights),
                        "--out", str(twin), "--config", str(config)], cwd=ROOT, check=True)
    print(f"measuring {twin}: {info.path}'s recipe without the Validation photos it learnt", flush=True)
    return model_dir.read(twin)
