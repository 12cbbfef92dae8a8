"""How well does the model say "unknown" for a cat it never saw, and for a scene without a cat?

    python bench/unknown_threshold.py [--data ../shared/data/knyang] [--weights FILE] [--model models/knyang]

Leave one cat out: we have no photos of other cats, so each cat in turn plays the
stranger. A head is trained on the other cats' cached features as in training's
phase (a) (centre squares and crops, the runs averaged), the familiarity gate is
built from their references (train/familiar.py), and the unknown threshold is
chosen by training's rule on the known cats' validation answers. Printed per
stranger: the known cats' validation photos and crops named correctly, and the
stranger's photos (all of them) and crops called "unknown", with the gate (what
the app does) and with the softmax threshold alone (what it did before).

No cat: the bundled model on crops of a portrait photo (Matplotlib's sample) and
of flat, noisy and striped pictures; the share called "unknown".
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

from knyang_cam import model_dir  # noqa: E402
from knyang_cam.classify import load_classifier  # noqa: E402
from knyang_cam.config import TrainConfig  # noqa: E402
from train import data, evaluate, familiar, features, fit  # noqa: E402
from train.model import Backbone, build  # noqa: E402
from train.pipeline import PHOTO_SCALE, VAL_VIEWS  # noqa: E402

SHARED = ROOT.parent / "shared"


def no_cat_crops(size: int) -> np.ndarray:
    """Square crops of scenes without a cat, at the classifier's size."""
    import cv2
    import matplotlib.cbook

    photo = cv2.cvtColor(cv2.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)),
                         cv2.COLOR_BGR2RGB)
    h, w = photo.shape[:2]
    crops = []
    for scale in (1.0, 0.8, 0.6):
        side = int(min(h, w) * scale)
        for fx, fy in ((0.5, 0.5), (0, 0), (1, 0), (0, 1), (1, 1)):
            x, y = int((w - side) * fx), int((h - side) * fy)
            crops.append(cv2.resize(photo[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_AREA))
    rng = np.random.default_rng(0)
    crops += [np.full((size, size, 3), v, np.uint8) for v in (0, 128, 255)]
    crops += [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(3)]
    crops += [np.tile(((np.arange(size) // p) % 2 * 255).astype(np.uint8)[None, :, None], (size, 1, 3))
              for p in (4, 10, 20)]
    return np.stack(crops)


def answers(head, gate, vectors: np.ndarray, gated: bool) -> np.ndarray:
    """The head's probabilities for pooled `vectors`, through the familiarity gate when `gated`."""
    p = np.asarray(head(vectors, training=False))
    return gate.shrink(p, vectors) if gated else p


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=SHARED / "data" / "knyang")
    p.add_argument("--weights", default=str(SHARED / "weights" / "mobilenet_v2_1.0_160_no_top.weights.h5"))
    p.add_argument("--model", type=Path, default=ROOT / "models" / "knyang")
    args = p.parse_args(argv)
    cfg = TrainConfig()
    dataset = data.find_images(args.data, cfg.validation_fraction, cfg.seed)
    backbone = Backbone(args.weights, cfg.image_size, cfg.alpha)
    net = build(backbone, len(dataset.classes), cfg.dropout)
    cache = features.FeatureCache(features.default_cache_dir(), backbone.identity())
    side = PHOTO_SCALE * cfg.image_size

    def feats(split, views):
        centre = features.features_for(split.paths, split.labels, net.features, backbone, cache)
        crops = features.view_features_for(centre.paths, centre.labels, net.features, backbone, views, side, cache)
        return centre, crops

    (tr, tr_views), (va, va_views) = feats(dataset.train, features.TRAIN_VIEWS), feats(dataset.validation, VAL_VIEWS)
    corner_names = {v.name for v in features.CORNERS}
    corner_rows = np.tile([v.name in corner_names for v in features.TRAIN_VIEWS], len(tr.labels))
    known_x, known_y = np.concatenate([va.vectors, va_views.vectors]), np.concatenate([va.labels, va_views.labels])
    every_x = np.concatenate([tr.vectors, tr_views.vectors, known_x])
    every_y = np.concatenate([tr.labels, tr_views.labels, known_y])

    print(f"{'stranger':<10} {'threshold':>9} {'cut':>6}   with the gate: named/unknown   threshold alone: "
          f"named/unknown")
    rows = []
    for out, name in enumerate(dataset.classes):
        keep = [c for c in range(len(dataset.classes)) if c != out]
        relabel = np.full(len(dataset.classes), -1)
        relabel[keep] = np.arange(len(keep))
        x = np.concatenate([tr.vectors, tr_views.vectors])
        y = np.concatenate([tr.labels, tr_views.labels])
        fit.seed_everything(cfg.seed)
        inp = keras.Input((x.shape[1],))
        head = keras.Model(inp, keras.layers.Dense(len(keep), activation="softmax")(
            keras.layers.Dropout(cfg.dropout)(inp)))
        known = np.isin(known_y, keep)
        fit.train_head(head, x[y != out], relabel[y[y != out]], known_x[known], relabel[known_y[known]],
                       n_classes=len(keep), epochs=cfg.head_epochs, learning_rate=cfg.head_learning_rate,
                       batch_size=cfg.batch_size, seed=cfg.seed, runs=cfg.head_runs)
        gate = familiar.fit_gate(net.model, [tr.vectors[tr.labels != out],
                                             tr_views.vectors[corner_rows & (tr_views.labels != out)]],
                                 known_x[known])
        stranger_x = every_x[every_y == out]
        cells = []
        for gated in (True, False):
            kp, sp = answers(head, gate, known_x[known], gated), answers(head, gate, stranger_x, gated)
            t = evaluate.choose_threshold(kp, relabel[known_y[known]]).value
            named = float(np.mean((kp.argmax(1) == relabel[known_y[known]]) & (kp.max(1) >= t)))
            cells += [t, named, float(np.mean(sp.max(1) < t))]
        rows.append(cells)
        print(f"{name:<10} {cells[0]:>9.3f} {gate.cut:>6.3f}   {cells[1]:>13.3f}/{cells[2]:.3f}   "
              f"{cells[4]:>15.3f}/{cells[5]:.3f}   (threshold alone: {cells[3]:.3f})")
    m = np.mean(rows, axis=0)
    print(f"{'mean':<10} {m[0]:>9.3f} {'':>6}   {m[1]:>13.3f}/{m[2]:.3f}   {m[4]:>15.3f}/{m[5]:.3f}")
    print("named: known cats' validation photos and crops named correctly; unknown: the stranger's "
          "photos and crops called unknown")

    info = model_dir.read(args.model)
    crops = no_cat_crops(info.input_size[0])
    top = load_classifier(info, "litert", 2).predict(crops).max(axis=1)
    print(f"\nno cat ({len(crops)} crops: a portrait photo, flat, noise, stripes), {info.path}: "
          f"{np.mean(top < info.unknown_threshold):.3f} called unknown (threshold {info.unknown_threshold}, "
          f"highest top probability {top.max():.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
