"""Time each stage of training on the shared dataset, and head training with vs without the feature cache.

    python bench/train_speed.py [--data ../shared/data/knyang] [--weights FILE] [--uncached-epochs 2]

The uncached figure runs the same head training with the backbone in the loop
(the frozen base recomputed for every photo of every epoch, as a plain
`model.fit` on pixels would) for a few epochs and extrapolates to
train.head_epochs; it is labelled as such. Then the backbone on the same crops in
TensorFlow and on LiteRT (features.on_litert, what `python -m train` runs), and the
whole `python -m train` with an empty feature cache (the 300 s target; `--no-full`
skips it). Prints figures only.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from shared_paths import KNYANG, WEIGHTS  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(KNYANG))
    p.add_argument("--weights", default=str(WEIGHTS))
    p.add_argument("--config", default=None)
    p.add_argument("--uncached-epochs", type=int, default=2,
                   help="epochs actually run with the backbone in the loop (then extrapolated)")
    p.add_argument("--no-full", action="store_true", help="skip the whole python -m train, cold cache")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    import keras
    import numpy as np

    from knyang_cam import config
    from knyang_cam.model_dir import ModelInfo
    from train import data, features, fit, recipe
    from train.export import write_model_dir
    from train.model import Backbone, build, infer

    cfg = config.load(args.config).train
    rows = []

    def timed(name, fn):
        start = time.perf_counter()
        result = fn()
        rows.append((name, time.perf_counter() - start))
        print(f"{name:<44} {rows[-1][1]:8.2f} s", flush=True)
        return result

    ds = data.find_images(args.data, cfg.validation_fraction, cfg.seed)
    train = timed("decode train + validation photos", lambda: (
        data.decode_split(ds.train, ds.classes, cfg.image_size),
        data.decode_split(ds.validation, ds.classes, cfg.image_size)))
    (tr, va) = train
    fit.seed_everything(cfg.seed)
    backbone = Backbone(args.weights, cfg.image_size, cfg.alpha)
    net = timed("build network (load weights)", lambda: build(backbone, len(ds.classes), cfg.dropout))
    n = len(ds.classes)
    feats = timed(f"feature extraction ({len(tr.labels) + len(va.labels)} photos, no cache)", lambda: (
        features.features_for(tr.paths, tr.labels, net.features, backbone, None, tr, cfg.batch_size),
        features.features_for(va.paths, va.labels, net.features, backbone, None, va, cfg.batch_size)))
    ftr, fva = feats
    with tempfile.TemporaryDirectory() as tmp:
        cache = features.FeatureCache(tmp, features.identity(net.features))
        features.features_for(tr.paths, tr.labels, net.features, backbone, cache, tr, cfg.batch_size)
        timed("feature lookup, all cached", lambda: features.features_for(
            tr.paths, tr.labels, net.features, backbone, features.FeatureCache(tmp, features.identity(net.features))))
    timed(f"head, {cfg.head_epochs} full-batch epochs on cached features", lambda: recipe.fit_softmax(
        ftr.vectors, ftr.labels, n, cfg.head_l2, cfg.head_epochs, cfg.head_learning_rate))
    head_seconds = rows[-1][1]

    # The same head training with the frozen backbone in the loop, on a copy of the network.
    fit.seed_everything(cfg.seed)
    slow = build(backbone, n, cfg.dropout).model
    slow.compile(keras.optimizers.Adam(cfg.head_learning_rate), "sparse_categorical_crossentropy",
                 metrics=["accuracy"])
    k = args.uncached_epochs
    timed(f"uncached head, {k} epochs run (backbone in loop)", lambda: slow.fit(
        tr.pixels.astype(np.float32), tr.labels, batch_size=cfg.batch_size, epochs=k, verbose=0,
        validation_data=(va.pixels.astype(np.float32), va.labels),
        class_weight=dict(enumerate(map(float, recipe.class_weights(tr.labels, n))))))
    uncached_epoch = rows[-1][1] / k
    uncached = uncached_epoch * cfg.head_epochs
    print(f"{'uncached head, extrapolated to ' + str(cfg.head_epochs) + ' epochs':<44} {uncached:8.2f} s")

    phase_b = cfg.fine_tune_epochs and timed(
        f"phase (b) fine-tune, at most {cfg.fine_tune_epochs} epochs", lambda: fit.fine_tune(net, ds, cfg))
    with tempfile.TemporaryDirectory() as tmp:
        info = ModelInfo(Path(tmp) / "m", ds.classes, (cfg.image_size,) * 2, 0.6, backbone.describe())
        timed("export (model.keras, model.tflite, model.json)", lambda: write_model_dir(net.model, info, info.path))

    crops = np.concatenate([tr.pixels, va.pixels])[:256].astype(np.float32)
    timed(f"backbone in TensorFlow, {len(crops)} crops", lambda: infer(net.features, crops, cfg.batch_size))
    in_tf = rows[-1][1]
    embed = features.on_litert(net.features, cfg.batch_size)
    timed("backbone converted to LiteRT", lambda: embed(crops[:1]))
    timed(f"backbone on LiteRT, {len(crops)} crops", lambda: embed(crops))
    on_litert = rows[-1][1]
    if not args.no_full:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "cold.yaml").write_text(f"train:\n  feature_cache: {Path(tmp) / 'cache'}\n")
            timed("python -m train, empty feature cache", lambda: subprocess.run(
                [sys.executable, "-m", "train", "--data", args.data, "--out", str(Path(tmp) / "m"), "--weights",
                 args.weights, "--config", str(Path(tmp) / "cold.yaml")], cwd=ROOT, check=True,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    extraction = rows[2][1]
    print()
    print(f"head epoch: cached {head_seconds / cfg.head_epochs * 1000:.1f} ms, "
          f"uncached {uncached_epoch * 1000:.0f} ms")
    print(f"head phase: uncached / cached = {uncached / head_seconds:.0f}x "
          f"({uncached / (head_seconds + extraction):.1f}x counting the one-time feature extraction)")
    print(f"backbone: TensorFlow {len(crops) / in_tf:.0f} crops/s, LiteRT {len(crops) / on_litert:.0f} crops/s "
          f"(x{in_tf / on_litert:.1f})")
    if phase_b:
        print(f"phase (b): {phase_b.epochs} epochs, {phase_b.seconds / max(phase_b.epochs, 1):.1f} s per epoch")
    else:
        print("phase (b): off (train.fine_tune_epochs is 0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
