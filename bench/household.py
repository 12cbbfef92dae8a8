"""Another household: many cats, few photos each, trained the way `python -m train` trains.

    python bench/household.py [--folds 5] [--repeats 2] [--seed 0] [--strangers 3] [--bank-breeds 3]
                               [--versus-validation 0.2]

The five cats are one household of many photos. A user's own is larger and thinner (issue 12:
23 cats, 4-26 photos each). Oxford-IIIT Pet has no individuals with several photos, so this
bench makes a stand-in household of its cat breeds, each breed one "cat" of 10 photos, and
the five cats each thinned to a random 4-26 photos per fold: 6 + 5 = 11 cats by default.
Of the other breeds (drawn again each repeat), `--strangers` are the neighbours' cats and must
read "unknown", and `--bank-breeds` stand for the shipped bank's other cats, beside the dogs of
breeds that are not held out (dogs of held-out breeds must read "unknown" too).

Folds are grouped (bursts and near-duplicates on one side, train/folds.py). Every fold fits
the shipped recipe (`bench/quality.py`'s fit_and_judge: head, gate, per-class cuts) on the
training side and judges the held-out photos as the app sees them: each crop in
regions.zooms views, the surest counting, unknown counted wrong. A breed is a looser class
than one cat, so its figures are a harder case than a household's; the thinned five are the
real individuals.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality  # noqa: E402  (bench/quality.py: features, the recipe's fit, grouped folds)

from knyang_cam import regions  # noqa: E402
from train.folds import grouped_folds, groups  # noqa: E402

# A user's household: each of the five keeps between these many training photos per fold.
THIN = (4, 26)


def without_validation(tr: np.ndarray, labels: np.ndarray, gid: np.ndarray, fraction: float, rng) -> np.ndarray:
    """The training mask less the share of each class that train.data's split holds out for validation
    (at least one photo of a class with two, whole groups while they fit)."""
    tr = tr.copy()
    for c in np.unique(labels[tr]):
        rows = np.flatnonzero(tr & (labels == c))
        n_val = min(max(1, round(len(rows) * fraction)), len(rows) - 1) if len(rows) > 1 else 0
        held = 0
        for g in rng.permutation(np.unique(gid[rows])):
            members = rows[gid[rows] == g]
            if held + len(members) <= n_val:
                tr[members] = False
                held += len(members)
        if n_val and not held:
            tr[rows[:n_val]] = False
    return tr


def household_sets(mine, cats, n_strangers: int, n_bank: int, rng):
    """(features, labels, class names, group ids, stranger-breed mask, bank-breed mask over `cats`) of one drawn
    household: `n_strangers` breeds are the neighbours' cats, `n_bank` breeds join the dogs in the bank."""
    from train import recipe

    drawn = rng.permutation(len(cats.names))
    strange = np.isin(cats.labels, drawn[:n_strangers])
    banked = np.isin(cats.labels, drawn[n_strangers:n_strangers + n_bank])
    member_breeds = sorted(drawn[n_strangers + n_bank:])
    relabel = {b: len(mine.names) + i for i, b in enumerate(member_breeds)}
    names = list(mine.names) + [cats.names[b] for b in member_breeds]
    pick = ~strange & ~banked
    views = {k: np.concatenate([mine.views[k], cats.views[k][pick]]) for k in ("train", "train_turned", "centre_views",
                                                                           "centre_views_flip", "eval")}
    labels = np.concatenate([mine.labels, np.array([relabel[b] for b in cats.labels[pick]], int)])
    paths = list(mine.paths) + [p for p, s in zip(cats.paths, pick) if s]
    gid = groups(paths, recipe.gate_part(views["eval"][:, 0]), labels)
    return views, labels, names, gid, strange, banked


def cross_validate(v, mine, cats, dogs, folds: int, repeats: int, seed: int, n_strangers: int, n_bank: int,
                   validation: float = 0.0) -> list[dict]:
    """Per held-out fold: the household's photos named right, the top class alone, strangers and dogs unknown.
    With `validation`, each fold's model learns without that share of its photos (held out to score it)."""
    from train import recipe

    z = len(quality.FACTORS)
    bank_cols = quality.columns(recipe.BANK_VIEWS, v, len(recipe.BANK_VIEWS))
    results = []
    for r in range(repeats):
        rng = np.random.default_rng(seed + r)
        views, labels, names, gid, strange, banked = household_sets(mine, cats, n_strangers, n_bank, rng)
        n_mine = len(mine.names)
        fold = grouped_folds(gid, labels, folds, seed + r)
        dog_fold = rng.permutation(len(dogs.names))[dogs.labels] % folds
        centre = (views["centre_views"] + views["centre_views_flip"]) / 2 if v.tta else views["centre_views"]
        strangers = quality.tta(cats, "centre_views", "centre_views_flip", v.tta)[strange]
        dog_views = quality.tta(dogs, "centre_views", "centre_views_flip", v.tta)
        for f in range(folds):
            tr, te = fold != f, fold == f
            for c in range(n_mine):  # each of the five keeps a random 4-26 of its training photos
                rows = rng.permutation(np.flatnonzero(tr & (labels == c)))
                tr[rows[rng.integers(THIN[0], THIN[1] + 1):]] = False
            if validation:
                tr = without_validation(tr, labels, gid, validation, np.random.default_rng(seed + 1000 * r + f))
            bank = np.concatenate([cats.views["bank"][banked], dogs.views["bank"][dog_fold != f]])
            bank = bank[:, bank_cols].reshape(-1, centre.shape[-1])
            negatives = recipe.spread(recipe.gate_part(bank), v.merge)
            judge, t, cut = quality.fit_and_judge(v, views["train"][tr], labels[tr], gid[tr], len(names), negatives,
                                                  views["train_turned"][tr], bank)

            def surest(x, judge=judge):  # each crop's views (crop-major) -> the app's choice among them
                p = judge(x.reshape(-1, x.shape[-1]))
                n = len(p) // z
                return regions.surest(p, np.repeat(np.arange(n), z), n)

            p, y = surest(centre[te]), labels[te]
            shown = np.where(p.max(1) >= t, p.argmax(1), -1)
            one = judge(centre[te][:, 0])
            m = {"named": np.mean(shown == y), "top": np.mean(one.argmax(1) == y),
                 "named_five": np.mean((shown == y)[y < n_mine])}
            if np.any(y >= n_mine):
                m["named_breeds"] = np.mean((shown == y)[y >= n_mine])
            m |= {"unknown": np.mean(shown == -1), "wrong": np.mean((shown != y) & (shown >= 0)),
                 "strangers": np.mean(surest(strangers).max(1) < t),
                 "dogs": np.mean(surest(dog_views[dog_fold == f]).max(1) < t),
                 "train_photos_five": float(np.mean([np.sum(tr & (labels == c)) for c in range(n_mine)]))}
            results.append(m)
            print(f"  repeat {r} fold {f}: " + " ".join(f"{k} {val:.3f}" for k, val in m.items()),
                  file=sys.stderr, flush=True)
    return results


WHAT = {"named": "household photos named right, as the app sees them (unknown counts as wrong)",
        "top": "  the top class alone, one view",
        "named_five": "  the five, thinned to 4-26 training photos each",
        "named_breeds": "  the breeds (10 photos each, 8 in training)",
        "unknown": "  read unknown", "wrong": "  named as another of the household",
        "strangers": "cats of the stranger breeds read unknown",
        "dogs": "dogs of breeds the bank lacks read unknown",
        "train_photos_five": "training photos per cat of the five (mean)"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    quality.add_data_options(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--strangers", type=int, default=3, help="cat breeds that are the neighbours' cats (of 12)")
    p.add_argument("--bank-breeds", type=int, default=3, help="cat breeds in the bank of other animals (of 12)")
    p.add_argument("--validation", type=float, default=0.0, metavar="SHARE",
                   help="fit each fold without this share of each cat's photos, as a model that keeps a "
                        "validation split out of training")
    p.add_argument("--versus-validation", type=float, metavar="SHARE",
                   help="also the same folds fitted without this share (--validation): the paired difference")
    quality.add_variant_options(p)
    args = p.parse_args(argv)
    if quality.missing_data(args):
        return 2
    if not (args.strangers >= 0 and args.bank_breeds >= 0 and args.strangers + args.bank_breeds <= 12):
        print("error: --strangers and --bank-breeds take at most 12 breeds together", file=sys.stderr)
        return 2
    v = quality.variant_of(args)
    start = time.perf_counter()
    mine, cats, dogs = quality.load_sets(args.data, args.pets, args.weights, cat_train_views=True)
    folds = cross_validate(v, mine, cats, dogs, args.folds, args.repeats, args.seed, args.strangers,
                           args.bank_breeds, args.validation)
    members = len(cats.names) - args.strangers - args.bank_breeds
    print(f"\na household of {len(mine.names)} cats thinned to {THIN[0]}-{THIN[1]} photos and {members} Oxford "
          f"cat breeds ({args.strangers} more are strangers, {args.bank_breeds} in the bank); {args.folds}-fold "
          f"grouped cross-validation x {args.repeats} (seed {args.seed}"
          f"{f', {args.validation:.0%} of the photos kept out of training' if args.validation else ''}); "
          f"mean +- spread (std over folds)")
    for k, (mean, spread) in quality.summary(folds).items():
        print(f"  {WHAT.get(k, k):<78} {mean:.3f} +- {spread:.3f}")
    if args.versus_validation is not None:
        paired = cross_validate(v, mine, cats, dogs, args.folds, args.repeats, args.seed, args.strangers,
                                args.bank_breeds, args.versus_validation)
        print(f"\nthe same folds with {args.versus_validation:.0%} of the photos kept out of training: figure, and "
              f"its difference from the above (mean +- spread over folds)")
        diff = quality.summary([{k: b[k] - a[k] for k in a} for a, b in zip(folds, paired)])
        for k, (mean, spread) in quality.summary(paired).items():
            print(f"  {WHAT.get(k, k):<78} {mean:.3f} +- {spread:.3f}   {diff[k][0]:+.3f} +- {diff[k][1]:.3f}")
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
