"""Learning the validation photos after scoring them, and where the refit starts from.

    python bench/refit.py [--folds 5] [--repeats 2] [--steps 30 60 100]

`python -m train` on a split it makes (one folder per cat) scores the recipe on the fifth it holds
out, then fits the head again on every photo (train/pipeline.py). Per grouped fold of the five
cats (bench/quality.py's features), this fits the head on the fold's training photos less that
fifth (what was shipped before), on all of them from zeros, and on all of them from the first
head with a few steps (what ships: REFIT_STEPS of train.head_epochs). It prints the top class on
the held-out photos' centre squares (the app's views averaged with their mirror images) and
clip frames, how often each fit answers as the fit from zeros does, and the seconds per fit.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import household  # noqa: E402  (its without_validation: the split train.data makes)
import quality  # noqa: E402

from knyang_cam.config import TrainConfig  # noqa: E402
from train import recipe  # noqa: E402
from train.folds import grouped_folds, groups  # noqa: E402


def main(argv=None) -> int:
    cfg = TrainConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    quality.add_data_options(p)
    p.add_argument("--steps", type=int, nargs="+", default=[30, 60, 100], help="steps of the refits from the head")
    args = p.parse_args(argv)
    if quality.missing_data(args):
        return 2
    mine, _, _ = quality.load_sets(args.data, args.pets, args.weights)
    x, y, n = mine.views["train"], mine.labels, len(mine.names)
    gid = groups(mine.paths, recipe.gate_part(mine.views["eval"][:, 0]), y)
    centre = ((mine.views["centre_views"] + mine.views["centre_views_flip"]) / 2)[:, 0]
    clip = (mine.views["clip"] + mine.views["clip_flip"]) / 2

    def fit(mask, steps, start=None):
        t = time.perf_counter()
        k, b, _ = recipe.fit_softmax(x[mask].reshape(-1, x.shape[-1]), np.repeat(y[mask], x.shape[1]), n,
                                     cfg.head_l2, steps, cfg.head_learning_rate, start=start)
        return (k, b), time.perf_counter() - t

    results = []
    for r in range(args.repeats):
        fold = grouped_folds(gid, y, args.folds, r)
        for f in range(args.folds):
            tr, te = fold != f, fold == f
            less = household.without_validation(tr, y, gid, cfg.validation_fraction,
                                                np.random.default_rng(100 + 10 * r + f))
            heads = {"held out": fit(less, cfg.head_epochs)}
            heads["all, from zeros"] = fit(tr, cfg.head_epochs)
            for steps in args.steps:
                heads[f"all, from the head, {steps} steps"] = fit(tr, steps, start=heads["held out"][0])
            frames = np.repeat(y[te], clip.shape[1])
            answers = {name: (clip[te].reshape(-1, x.shape[-1]) @ k + b).argmax(1) for name, ((k, b), _) in
                       heads.items()}
            m = {}
            for name, ((k, b), seconds) in heads.items():
                m[name] = {"centre": np.mean((centre[te] @ k + b).argmax(1) == y[te]),
                           "clip": np.mean(answers[name] == frames),
                           "as from zeros": np.mean(answers[name] == answers["all, from zeros"]),
                           "seconds": seconds}
            results.append(m)
            print(f"  repeat {r} fold {f}: " + "; ".join(f"{name} clip {v['clip']:.3f}" for name, v in m.items()),
                  file=sys.stderr, flush=True)
    print(f"\nthe five cats, {args.folds}-fold grouped cross-validation x {args.repeats}; top class on held-out "
          f"photos; mean +- spread (std over folds)")
    print(f"  {'head':<36} {'centre squares':>16} {'clip frames':>16} {'as from zeros':>16} {'seconds':>10}")
    for name in results[0]:
        cells = [np.array([m[name][k] for m in results]) for k in ("centre", "clip", "as from zeros", "seconds")]
        print(f"  {name:<36} " + " ".join(f"{c.mean():>8.3f} +- {c.std():.3f}" for c in cells[:3])
              + f" {cells[3].mean():>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
