"""How well does the unknown threshold tell a stranger cat from a known one? Leave one cat out.

    python bench/unknown_threshold.py [--data ../shared/data/knyang] [--weights FILE]

We have no photos of other cats, so each cat in turn plays the stranger: a head is
trained on the other cats' cached backbone features (as in training's phase (a)),
then for each threshold it prints the share of the known cats' validation photos
still named correctly, and the share of the stranger's photos (all of them)
called "unknown". Phase (b) fine-tuning is left out (it would take minutes per
fold), so the figures describe the threshold rule, not the bundled model exactly.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import keras
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from knyang_cam.config import TrainConfig  # noqa: E402
from train import data, evaluate, features, fit  # noqa: E402
from train.model import Backbone, build  # noqa: E402

SHARED = ROOT.parent / "shared"
THRESHOLDS = (0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=SHARED / "data" / "knyang")
    p.add_argument("--weights", default=str(SHARED / "weights" / "mobilenet_v2_1.0_160_no_top.weights.h5"))
    args = p.parse_args(argv)
    cfg = TrainConfig()
    dataset = data.find_images(args.data, cfg.validation_fraction, cfg.seed)
    backbone = Backbone(args.weights, cfg.image_size, cfg.alpha)
    net = build(backbone, len(dataset.classes), cfg.dropout)
    cache = features.FeatureCache(features.default_cache_dir(), backbone.identity())
    tr = features.features_for(dataset.train.paths, dataset.train.labels, net.features, backbone, cache)
    va = features.features_for(dataset.validation.paths, dataset.validation.labels, net.features, backbone, cache)

    known_kept = {t: [] for t in THRESHOLDS}
    stranger_unknown = {t: [] for t in THRESHOLDS}
    chosen = []
    print(f"{'stranger':<10} {'rule threshold':>14}  " + "  ".join(f"t={t:<5}" for t in THRESHOLDS))
    for out, name in enumerate(dataset.classes):
        keep = [c for c in range(len(dataset.classes)) if c != out]
        relabel = {c: i for i, c in enumerate(keep)}

        def part(f, known: bool):
            mask = np.isin(f.labels, keep) if known else f.labels == out
            return f.vectors[mask], np.array([relabel.get(int(c), -1) for c in f.labels[mask]])

        (x, y), (vx, vy) = part(tr, True), part(va, True)
        fit.seed_everything(cfg.seed)
        inp = keras.Input((x.shape[1],))
        head = keras.Model(inp, keras.layers.Dense(len(keep), activation="softmax")(
            keras.layers.Dropout(cfg.dropout)(inp)))
        fit.train_head(head, x, y, vx, vy, n_classes=len(keep), epochs=cfg.head_epochs,
                       learning_rate=cfg.head_learning_rate, batch_size=cfg.batch_size, seed=cfg.seed)
        known_probs = np.asarray(head(vx, training=False))
        stranger = np.concatenate([part(tr, False)[0], part(va, False)[0]])
        stranger_top = np.asarray(head(stranger, training=False)).max(axis=1)
        rule = evaluate.choose_threshold(known_probs, vy).value
        chosen.append(rule)
        cells = []
        for t in THRESHOLDS:
            kept = float(np.mean((known_probs.argmax(1) == vy) & (known_probs.max(1) >= t)))
            unknown = float(np.mean(stranger_top < t))
            known_kept[t].append(kept)
            stranger_unknown[t].append(unknown)
            cells.append(f"{kept:.2f}/{unknown:.2f}")
        print(f"{name:<10} {rule:>14.3f}  " + "  ".join(f"{c:<7}" for c in cells))
    print(f"{'mean':<10} {np.mean(chosen):>14.3f}  " + "  ".join(
        f"{np.mean(known_kept[t]):.2f}/{np.mean(stranger_unknown[t]):.2f}" for t in THRESHOLDS))
    print("\ncells: known cats' validation photos named correctly / stranger's photos called unknown")
    return 0


if __name__ == "__main__":
    sys.exit(main())
