"""Can the head tell the grey tabbies apart better without more photos? Frozen layers, head knobs, fine-tuning.

    python bench/tabby_head.py [--data ../shared/data/knyang] [--weights FILE] [--folds 5]
                               [--repeats 2] [--epochs 4] [--limit N]

Every figure is the top class alone (no unknown gate), grouped cross-validation as
bench/quality.py (folds keep bursts and near-duplicates together): the head learns
from 12 crops of each training photo (centre, mirror, the recipe's first 10 crops);
it is judged on the held-out photos' centre square and on recipe.EVAL_VIEWS, each
averaged with its mirror image as the model does. Three questions:
  1. Does pooling an earlier layer beside the last one help (finer texture)?
  2. Does the head's L2, its steps, square-rooted or average-only features, or a
     nearest-neighbour vote help?
  3. Does fine-tuning blocks 13-16 (BatchNorm frozen, Adam 1e-4, started from the
     fitted head) on the cached block_12 maps help, and after how many epochs? Judged on
     the last epoch's weights, on the mean of every epoch's weights so far (stochastic
     weight averaging: one epoch's weights swing from one tabby to the other), and on
     that mean with the numpy head refitted on the moved features (what `python -m train`
     does after its fine-tuning phase).
Prints figures only (about 25 min on a 2-core CPU; --fine-tune-only about 10 min a repeat).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from shared_paths import KNYANG, WEIGHTS  # noqa: E402

LAYERS = ("out_relu", "block_16_project_BN", "block_15_add", "block_14_add", "block_13_expand_relu",
          "block_12_add", "block_11_add")
SPLIT = "block_12_add"  # fine-tuning trains what comes after it
N_TRAIN = 12  # crops of each training photo the head learns from


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(KNYANG))
    p.add_argument("--weights", default=str(WEIGHTS))
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=2, help="fold seeds for the frozen figures (fine-tuning: the first)")
    p.add_argument("--epochs", type=int, default=5, help="fine-tuning epochs, judged after each")
    p.add_argument("--fine-tune-only", action="store_true", help="skip questions 1-2; fine-tune on every repeat")
    p.add_argument("--limit", type=int, default=0, help="every Nth photo only (a quick check of the script)")
    return p


def extract(paths, weights: str):
    """Pooled (avg+max) features of each LAYERS layer and the SPLIT maps, for every photo's crops."""
    import keras

    from knyang_cam.config import TrainConfig
    from train import data, recipe
    from train.features import CROPS, PHOTO_SCALE
    from train.model import Backbone, build_base

    size = TrainConfig().image_size
    base = build_base(Backbone(weights, size))
    pixels = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(pixels)
    maps = keras.Model(base.input, [base.get_layer(n).output for n in LAYERS])(x)
    pooled = [keras.layers.Concatenate()([keras.layers.GlobalAveragePooling2D()(m),
                                          keras.layers.GlobalMaxPooling2D()(m)]) for m in maps]
    net = keras.Model(pixels, pooled + [maps[LAYERS.index(SPLIT)]])
    views = ((recipe.CENTRE, recipe.mirror(recipe.CENTRE)) + CROPS[:N_TRAIN - 2] + recipe.EVAL_VIEWS
             + tuple(recipe.mirror(v) for v in recipe.EVAL_VIEWS))
    out = [[] for _ in range(len(LAYERS) + 1)]
    for path in paths:
        photo = data.load_photo(path, PHOTO_SCALE * size)
        for j, a in enumerate(net(np.stack([data.crop_view(photo, v, size) for v in views]), training=False)):
            out[j].append(a.numpy().astype(np.float16 if j == len(LAYERS) else np.float32))
    return {n: np.stack(o) for n, o in zip(LAYERS + ("maps",), out)}


def judge(p: np.ndarray, y: np.ndarray) -> tuple[float, ...]:
    """(centre right, crops right, Chungdam named Hwamok, Hwamok named Chungdam) of probs [N, views, C]."""
    return ((p[:, 0].argmax(1) == y).mean(), (p.argmax(2) == y[:, None]).mean(),
            (p[y == 0].argmax(2) == 2).mean(), (p[y == 2].argmax(2) == 0).mean())


def held_out(x: np.ndarray) -> np.ndarray:
    """The held-out photos' EVAL_VIEWS, each averaged with its mirror image."""
    n = (x.shape[1] - N_TRAIN) // 2
    return (x[:, N_TRAIN:N_TRAIN + n] + x[:, N_TRAIN + n:]) / 2


def fit_head(x, y, l2=0.01, steps=300):
    """(kernel, bias, rows, labels) of a softmax head on the first N_TRAIN crops of photos `x` [N, views, D]."""
    from train import recipe

    rows, labels = x[:, :N_TRAIN].reshape(-1, x.shape[-1]), np.repeat(y, N_TRAIN)
    kernel, bias, _ = recipe.fit_softmax(rows, labels, 5, l2, steps, 0.01)
    return kernel, bias, rows, labels


def frozen(x, y, fold_sets, l2=0.01, steps=300, knn=0.0):
    """judge() of each fold for a softmax head (optionally mixed with a nearest-crop vote) on frozen features."""
    from train import recipe

    res = []
    for fid in fold_sets:
        for f in np.unique(fid):
            tr, te = fid != f, fid == f
            kernel, bias, rows, labels = fit_head(x[tr], y[tr], l2, steps)
            ev = held_out(x[te])
            flat = ev.reshape(-1, x.shape[-1])
            p = recipe.softmax(flat @ kernel + bias)
            if knn:
                sim = recipe.unit(flat) @ recipe.unit(rows).T
                vote = np.stack([sim[:, labels == c].max(1) for c in range(5)], 1)
                p = (1 - knn) * p + knn * recipe.softmax(vote / 0.02)
            res.append(judge(p.reshape(ev.shape[0], ev.shape[1], 5), y[te]))
    return np.array(res)


def fine_tuned(feats, y, fid, weights: str, epochs: int, seed: int = 0) -> dict[str, np.ndarray]:
    """judge() per fold after 1..epochs epochs of fine-tuning the top blocks, by way of judging.

    {"last": [epochs, folds, 4], "averaged": the same, "averaged, head refitted": [1, folds, 4] (at the end)}.
    """
    folds = [_fine_tune_fold(feats, y, fid != f, fid == f, weights, epochs, seed * 100 + int(f))
             for f in np.unique(fid)]
    return {k: np.array([f[k] for f in folds]).transpose(1, 0, 2) for k in folds[0]}


def _fine_tune_fold(feats, y, tr, te, weights: str, epochs: int, seed: int) -> dict[str, list]:
    import keras

    from train import recipe
    from train.model import Backbone, build_base, infer

    x, maps = feats["out_relu"], feats["maps"]
    keras.utils.set_random_seed(seed)
    base = build_base(Backbone(weights, 160))
    top = keras.Model(base.get_layer(SPLIT).output, base.output)
    for layer in top.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    inp = keras.Input(maps.shape[2:])
    m = top(inp, training=False)
    pooled = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling2D()(m),
                                         keras.layers.GlobalMaxPooling2D()(m)])
    dense = keras.layers.Dense(5, activation="softmax")
    model, pooler = keras.Model(inp, dense(keras.layers.Dropout(0.2)(pooled))), keras.Model(inp, pooled)
    kernel, bias, _, labels = fit_head(x[tr], y[tr])
    dense.set_weights([kernel, bias])
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy")
    train_maps = maps[tr][:, :N_TRAIN].astype(np.float32).reshape((-1,) + maps.shape[2:])
    test_maps = maps[te].astype(np.float32).reshape((-1,) + maps.shape[2:])

    def judged(refit: bool = False):
        ev = held_out(infer(pooler, test_maps, 64).reshape(te.sum(), -1, pooled.shape[-1]))
        k, b = dense.get_weights()
        if refit:
            k, b, _, _ = fit_head(infer(pooler, train_maps, 64).reshape(tr.sum(), N_TRAIN, -1), y[tr])
        p = recipe.softmax(ev.reshape(-1, ev.shape[-1]) @ k + b).reshape(ev.shape[0], ev.shape[1], 5)
        return judge(p, y[te])

    variables, mean = model.trainable_weights, None
    out = {"last": [], "averaged": [], "averaged, head refitted": []}
    for e in range(1, epochs + 1):
        model.fit(train_maps, labels, batch_size=32, epochs=1, verbose=0, shuffle=True,
                  sample_weight=recipe.class_weights(labels, 5)[labels])
        now = [v.numpy() for v in variables]
        mean = now if mean is None else [(a * (e - 1) + b) / e for a, b in zip(mean, now)]
        out["last"].append(judged())
        for v, a in zip(variables, mean):
            v.assign(a)
        out["averaged"].append(judged())
        if e == epochs:
            out["averaged, head refitted"].append(judged(refit=True))
        for v, a in zip(variables, now):
            v.assign(a)
    print(f"  fine-tuned (seed {seed}): centre by epoch, last {[round(float(r[0]), 3) for r in out['last']]}, "
          f"averaged {[round(float(r[0]), 3) for r in out['averaged']]}", file=sys.stderr, flush=True)
    return out


def line(name: str, r: np.ndarray) -> str:
    return (f"{name:34s} centre {r[:, 0].mean():.3f} +- {r[:, 0].std():.3f}  crops {r[:, 1].mean():.3f} +- "
            f"{r[:, 1].std():.3f}  Chungdam->Hwamok {r[:, 2].mean():.3f}  Hwamok->Chungdam {r[:, 3].mean():.3f}")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from train import data, folds, recipe

    ds = data.find_images(args.data, 0.2, 0)
    paths = list(ds.train.paths) + list(ds.validation.paths)
    y = np.asarray(list(ds.train.labels) + list(ds.validation.labels))
    if args.limit:
        paths, y = paths[::args.limit], y[::args.limit]
    t = time.perf_counter()
    feats = extract(paths, args.weights)
    print(f"features of {len(paths)} photos ({time.perf_counter() - t:.0f} s)", file=sys.stderr, flush=True)
    last = feats["out_relu"]
    gid = folds.groups(paths, recipe.gate_part(last[:, N_TRAIN]), y)
    fold_sets = [folds.grouped_folds(gid, y, args.folds, seed) for seed in range(args.repeats)]
    print(f"grouped {args.folds} folds x {args.repeats}, top class alone, mean +- SD over folds")
    print(line("last layer (the shipped features)", frozen(last, y, fold_sets)))
    if args.fine_tune_only:
        fine_tune_lines(feats, y, fold_sets, args)
        return 0
    for name in LAYERS[1:]:
        print(line(f"  + {name}", frozen(np.concatenate([last, feats[name]], -1), y, fold_sets)))
    for l2 in (0.001, 0.1, 1.0):
        print(line(f"head L2 {l2} (shipped 0.01)", frozen(last, y, fold_sets, l2=l2)))
    print(line("head 1000 steps (shipped 300)", frozen(last, y, fold_sets, steps=1000)))
    print(line("square-rooted features", frozen(np.sqrt(np.maximum(last, 0)), y, fold_sets)))
    print(line("average pooling only", frozen(last[..., :last.shape[-1] // 2], y, fold_sets)))
    print(line("head and nearest-crop vote, half each", frozen(last, y, fold_sets, knn=0.5)))
    fine_tune_lines(feats, y, fold_sets[:1], args)
    return 0


def fine_tune_lines(feats, y, fold_sets, args) -> None:
    """Fine-tuning's lines, over the folds of every fold set given."""
    runs = [fine_tuned(feats, y, fid, args.weights, args.epochs, seed) for seed, fid in enumerate(fold_sets)]
    for name in runs[0]:
        for e, r in enumerate(np.concatenate([run[name] for run in runs], 1)):
            epoch = args.epochs if name.endswith("refitted") else e + 1
            print(line(f"fine-tuned, {name}, epoch {epoch}", r))


if __name__ == "__main__":
    sys.exit(main())
