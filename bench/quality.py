"""Honest model selection: repeated k-fold cross-validation over every labelled photo, folds grouped.

    python bench/quality.py [--data ../shared/data/knyang] [--folds 5] [--repeats 2] [--seed 0] [--per-class N]

Train and Validation photos are pooled, then split into `--folds` folds `--repeats`
times (a new seed each time). Folds are grouped, never by photo: photos of one burst
(the file-name prefix before `-N`, e.g. `1587034022066-3.jpg`) and near-duplicates
(average-pooled feature cosine above NEAR_DUPLICATE, joined by union-find) always sit
on the same side. Per held-out fold it measures the recipe of `train.recipe` (the one
`python -m train` ships) on:

- centre squares of the held-out photos, and fixed crops of them (VAL_VIEWS);
- frames of a pan/zoom clip of every held-out photo (bench/make_demo_clip.py's Ken Burns
  move, the app's centre square of each frame);
- the tabby pair: Chungdam named Hwamok and back, on the clip frames;
- scenes: every held-out photo (and every stranger cat and dog) pasted into a photographed or
  drawn room (bench/find_cats.py's backgrounds, which training never sees), cropped the way the
  app crops a found cat: a square about the photo's size, a little off it (SCENE_CROPS per photo);
- turned: the held-out centre squares turned 90 degrees (either way) and 180 (a camera on its side or
  upside down), and the strangers' turned 90/180/270; `--no-turned` without the turned references;
- strangers: the Oxford-IIIT Pet cats of breeds the model's negative bank did not see
  (the bank is split by breed in the same folds), and leave-one-cat-out (each cat in turn
  is left out of training and must read "unknown");
at the unknown cut the product chooses (train.recipe.choose_cut on the training side only).

Backbone features are computed once per photo and crop and kept in the feature cache
(train/features.py), so after the first run a recipe variant costs seconds.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from shared_paths import KNYANG, PETS, WEIGHTS  # noqa: E402

from knyang_cam import regions  # noqa: E402
from knyang_cam.config import RegionsConfig  # noqa: E402
from knyang_cam.regions import zoom_factors  # noqa: E402
from train import recipe  # noqa: E402
from train.data import View  # noqa: E402
from train.folds import NEAR_DUPLICATE, grouped_folds, groups  # noqa: E402

# Frames of the pan/zoom move kept per photo (of CLIP_FRAMES), and the move's length.
CLIP_FRAMES, CLIP_KEEP = 30, (0, 10, 20, 29)
# Scene crops per photo, and how far the crop's side and centre stray from the pasted photo's.
SCENE_CROPS, SCENE_GROW, SCENE_SHIFT = 2, (1.0, 1.25), 0.12
# The app's views of a found cat (regions.zooms, regions.zoom_step), for the scene measure with views.
FACTORS = zoom_factors(RegionsConfig().zooms, RegionsConfig().zoom_step)
FACTORS_TAG = "z".join(f"{f:.3f}" for f in FACTORS)  # part of the cache name of crops made in those views
# The held-out centre squares turned a quarter, a half and three quarters (a camera on its side, upside down).
TURNED_EVAL = tuple(View(1.0, turn=t) for t in (1, 2, 3))
# ... and each in the app's views (regions.zoomed of the centre square), turn-major.
TURNED_VIEWS = tuple(View(f, turn=t) for t in (1, 2, 3) for f in FACTORS)


def clip_squares(path: Path, seed: int, size: int, factors=(1.0,)) -> np.ndarray:
    """The app's centre square (RGB, `size`) of CLIP_KEEP frames of a pan/zoom move over the photo; with
    several `factors`, each square's views as the app makes them (regions.zoomed), frame-major."""
    import cv2
    from make_demo_clip import ken_burns

    from knyang_cam.regions import center_finder, crops, zoomed

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"cannot read {path}")
    frames = ken_burns(image, CLIP_FRAMES, np.random.default_rng(seed))
    return np.concatenate([crops(frames[i], zoomed(center_finder(frames[i]), factors, frames[i].shape[1],
                                                   frames[i].shape[0]), (size, size)) for i in CLIP_KEEP])


@functools.cache
def _rooms() -> list:
    """bench/find_cats.py's backgrounds without a cat (photographs, terrain maps, drawn rooms), made once."""
    import find_cats

    return find_cats.backgrounds(np.random.default_rng(0))


def scene_squares(path: Path, seed: int, size: int, factors=(1.0,)) -> np.ndarray:
    """SCENE_CROPS crops (RGB, `size`) of the photo's centre square pasted into a room, as the app crops a
    found cat; with several `factors`, each crop's views as the app makes them (regions.zoomed), crop-major."""
    import cv2
    import find_cats

    from knyang_cam.regions import crops, zoomed
    from knyang_cam.results import Region

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"cannot read {path}")
    rooms = _rooms()
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(SCENE_CROPS):
        canvas = rooms[rng.integers(len(rooms))].copy()
        h, w = canvas.shape[:2]
        side = int(rng.uniform(0.4, 0.55) * h)
        x, y = int(rng.uniform(0.15, 0.85) * (w - side)), int(rng.uniform(0.15, 0.85) * (h - side))
        find_cats.place(canvas, *find_cats.cut_out(image, rng), (x, y, side, side))
        crop = int(min(side * rng.uniform(*SCENE_GROW), h))
        cx = x + side / 2 + rng.uniform(-1, 1) * SCENE_SHIFT * side
        cy = y + side / 2 + rng.uniform(-1, 1) * SCENE_SHIFT * side
        x0 = int(np.clip(cx - crop / 2, 0, w - crop))
        y0 = int(np.clip(cy - crop / 2, 0, h - crop))
        out.append(crops(canvas, zoomed([Region((x0, y0, crop, crop), "detect")], factors, w, h), (size, size)))
    return np.concatenate(out)


@dataclass
class Photos:
    """Features of one photo set: rows are photos; views are [photos, views, D]."""

    paths: list
    labels: np.ndarray  # class index (knyang) or breed index (pets)
    names: list  # class or breed names
    views: dict  # name -> [N, V, D] float32


# Crops made from a photo rather than cut by a train.data.View: name -> (maker, crops per photo, cache tag).
MADE = {"clip": (clip_squares, len(CLIP_KEEP), f"#clip{len(CLIP_KEEP)}of{CLIP_FRAMES}s"),
        "clip_views": (functools.partial(clip_squares, factors=FACTORS), len(CLIP_KEEP) * len(FACTORS),
                       f"#clip{len(CLIP_KEEP)}of{CLIP_FRAMES}s{FACTORS_TAG}"),
        "scene": (scene_squares, SCENE_CROPS, f"#scene{SCENE_CROPS}v{SCENE_CROPS}s"),
        "scene_views": (functools.partial(scene_squares, factors=FACTORS), SCENE_CROPS * len(FACTORS),
                        f"#scene{SCENE_CROPS}v{SCENE_CROPS}s{FACTORS_TAG}")}


def photo_features(paths, labels, names, view_sets: dict, made: tuple[str, ...], net, backbone, cache,
                   embed) -> Photos:
    """Features of every photo for each named tuple of train.data.View, plus the `made` crops (of MADE),
    each also mirrored. `embed`: the backbone, on LiteRT as `python -m train` runs it (features.on_litert)."""
    from train import features

    side = 2 * backbone.image_size
    out = {}
    for name, views in view_sets.items():
        t = time.perf_counter()
        f = features.view_features_for(paths, labels, net.features, backbone, views, side, cache, embed=embed)
        if f.skipped:
            raise SystemExit(f"undecodable photos: {f.skipped}")
        out[name] = f.vectors.reshape(len(paths), len(views), -1)
        print(f"  {name}: {len(views)} views of {len(paths)} photos, {f.computed} computed "
              f"({time.perf_counter() - t:.0f} s)", file=sys.stderr, flush=True)
    for name in made:
        maker, n, tag = MADE[name]
        t = time.perf_counter()
        keys = [f"{features.file_key(Path(p))}{tag}{i}" for i, p in enumerate(paths)]
        todo = [i for i, k in enumerate(keys) if cache.get(k + "f0m1") is None]
        if todo:
            squares = np.concatenate([maker(paths[i], i, backbone.image_size) for i in todo])
            both = np.concatenate([squares, squares[:, :, ::-1]])
            vecs = embed(both)
            m = len(squares)
            for row, i in enumerate(todo):
                for j in range(n):
                    cache.put(f"{keys[i]}f{j}m0", vecs[row * n + j])
                    cache.put(f"{keys[i]}f{j}m1", vecs[m + row * n + j])
            cache.save()
        for m, suffix in ((0, ""), (1, "_flip")):
            out[name + suffix] = np.stack([np.stack([cache.get(f"{k}f{j}m{m}") for j in range(n)]) for k in keys])
        print(f"  {name}: {n} crops of {len(paths)} photos, {len(todo)} photos computed "
              f"({time.perf_counter() - t:.0f} s)", file=sys.stderr, flush=True)
    return Photos(list(paths), np.asarray(labels), list(names), out)


def load_sets(data_root: Path, pets_root: Path, weights: str, cat_train_views: bool = False,
              bank_photos: bool = False):
    """(knyang photos, pet cats, pet dogs) with every view the measures and recipes use; with
    `cat_train_views`, the cats' training crops too (bench/household.py trains on them); with
    `bank_photos`, the pets' bank crops cut from the shipped, scaled-down photos (train/bank/)."""
    from knyang_cam.config import TrainConfig
    from train import data, features, negatives, recipe
    from train.model import Backbone, build

    cfg = TrainConfig()
    backbone = Backbone(weights, cfg.image_size, cfg.alpha)
    net = build(backbone, 2, cfg.dropout)
    cache = features.FeatureCache(features.default_cache_dir(), features.identity(net.features))
    embed = features.on_litert(net.features, cfg.batch_size)
    ds = data.find_images(data_root, cfg.validation_fraction, cfg.seed)
    paths = list(ds.train.paths) + list(ds.validation.paths)
    labels = list(ds.train.labels) + list(ds.validation.labels)
    mirrored = tuple(recipe.mirror(v) for v in recipe.EVAL_VIEWS)
    # The centre square's views as the app takes them (regions.zoomed of the centre square).
    centre_views = tuple(data.View(f) for f in FACTORS)
    views = {"eval": recipe.EVAL_VIEWS, "eval_flip": mirrored, "centre_views": centre_views,
             "centre_views_flip": tuple(recipe.mirror(v) for v in centre_views),
             "turned": TURNED_EVAL, "turned_flip": tuple(recipe.mirror(v) for v in TURNED_EVAL),
             "turned_views": TURNED_VIEWS, "turned_views_flip": tuple(recipe.mirror(v) for v in TURNED_VIEWS)}
    print(f"features of {data_root}:", file=sys.stderr)
    mine = photo_features(paths, labels, ds.classes,
                          {"train": recipe.TRAIN_VIEWS, "train_turned": recipe.TURNED, **views},
                          ("clip", "clip_views", "scene", "scene_views"), net, backbone, cache, embed)
    pets = []
    for kind in ("cats", "dogs"):
        files = sorted((pets_root / kind).glob("*.jpg"))
        breeds = sorted({f.stem.rsplit("_", 1)[0] for f in files})
        breed = [breeds.index(f.stem.rsplit("_", 1)[0]) for f in files]
        print(f"features of {pets_root / kind}:", file=sys.stderr)
        train = {"train": recipe.TRAIN_VIEWS, "train_turned": recipe.TURNED} if cat_train_views and kind == "cats" \
            else {}
        pets.append(photo_features(files, breed, breeds,
                                   {"bank": recipe.BANK_VIEWS, **train, **views},
                                   ("clip", "clip_views", "scene", "scene_views") if kind == "cats"
                                   else ("scene", "scene_views"), net, backbone, cache, embed))
        if bank_photos:
            shipped = [negatives.PHOTOS / kind / f.name for f in files]
            pets[-1].views["bank"] = photo_features(shipped, breed, breeds, {"bank": recipe.BANK_VIEWS}, (), net,
                                                    backbone, cache, embed).views["bank"]
    return mine, pets[0], pets[1]


@dataclass(frozen=True)
class Variant:
    """The recipe's knobs that cross-validation chooses (their defaults: what train ships)."""

    views: int  # the first `views` of recipe.TRAIN_VIEWS train the head
    ref_views: int  # the first `ref_views` of them are the gate's references
    l2: float
    steps: int
    lr: float
    keep: float  # share of held-out known crops the cut keeps
    beta: float  # weight of the nearest other animal in the open-set score
    tta: bool  # features averaged with the mirror image's
    merge: float
    scenes: bool = True  # the views framed in drawn scenes (train/scenes.py) take part
    turned: bool = True  # recipe.TURNED join the gate's references
    turned_head: bool = True  # ... and the head's training rows
    other: bool = True  # the head learns the bank's other animals as one class more (recipe.shrink)


def add_data_options(p: argparse.ArgumentParser) -> None:
    """The shared data sets, the backbone and the folds, as options of a bench."""
    p.add_argument("--data", type=Path, default=KNYANG)
    p.add_argument("--pets", type=Path, default=PETS)
    p.add_argument("--weights", default=str(WEIGHTS))
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=2)


def missing_data(args: argparse.Namespace) -> bool:
    """Say which data set `add_data_options` named is absent (one line on stderr); True when one is."""
    for root in (args.data, args.pets):
        if not root.is_dir():
            print(f"error: {root} not found (needs the shared data sets)", file=sys.stderr)
            return True
    return False


def add_variant_options(p: argparse.ArgumentParser) -> None:
    """The recipe's knobs as options of a bench (defaults: what train ships, from TrainConfig)."""
    from knyang_cam.config import TrainConfig

    cfg = TrainConfig()
    p.add_argument("--views", type=int, default=cfg.head_views)
    p.add_argument("--ref-views", type=int, default=cfg.reference_views)
    p.add_argument("--l2", type=float, default=cfg.head_l2)
    p.add_argument("--steps", type=int, default=cfg.head_epochs)
    p.add_argument("--lr", type=float, default=cfg.head_learning_rate)
    p.add_argument("--keep", type=float, default=cfg.unknown_keep)
    p.add_argument("--beta", type=float, default=cfg.other_animal_weight)
    p.add_argument("--no-tta", action="store_true")
    p.add_argument("--merge", type=float, default=cfg.reference_merge)
    p.add_argument("--no-scenes", action="store_true", help="without the views framed in drawn scenes")
    p.add_argument("--no-turned", action="store_true",
                   help="without the turned references (recipe.TURNED; the bank keeps its turned crops)")
    p.add_argument("--no-turned-head", action="store_true", help="the turned references do not train the head")
    p.add_argument("--no-other", action="store_true", help="a head of my cats alone (no class of other animals)")


def variant_of(args: argparse.Namespace) -> Variant:
    """The Variant that `add_variant_options`' options name."""
    return Variant(args.views, args.ref_views, args.l2, args.steps, args.lr, args.keep, args.beta, not args.no_tta,
                   args.merge, not args.no_scenes, not args.no_turned, not args.no_turned_head, not args.no_other)


def columns(views, v: Variant, n: int) -> list[int]:
    """Indices of the first `n` of `views` the variant uses (without the framed ones when not v.scenes)."""
    return [i for i, view in enumerate(views) if v.scenes or view.scene < 0][:n]


def fit_and_judge(v: Variant, x_train, y_train, g_train, n_classes, negatives, x_turned, other_rows):
    """Fit head and gate as train does; return a function from features to gated probabilities.
    `x_turned`: the photos' recipe.TURNED features; `other_rows`: the features of the bank's crops (the head's
    other animals)."""
    from train import familiar

    head, ref = columns(recipe.TRAIN_VIEWS, v, v.views), columns(recipe.TRAIN_VIEWS, v, v.ref_views)
    d = x_train.shape[-1]
    head_x, ref_x = x_train[:, head], x_train[:, ref]
    if v.turned:
        head_x = np.concatenate([head_x, x_turned], 1) if v.turned_head else head_x
        ref_x = np.concatenate([ref_x, x_turned], 1)
    x, y = head_x.reshape(-1, d), np.repeat(y_train, head_x.shape[1])
    if v.other:
        x, y = np.concatenate([x, other_rows]), np.concatenate([y, np.full(len(other_rows), n_classes)])
    kernel, bias, _ = recipe.fit_softmax(x, y, n_classes + v.other, v.l2, v.steps, v.lr)
    n = ref_x.shape[1]
    gate = familiar.fit_gate(ref_x.reshape(-1, d), np.repeat(g_train, n), negatives, v.keep, v.beta, v.merge,
                             np.repeat(y_train, n), n_classes)

    def judge(x):
        return gate.shrink(recipe.softmax(x @ kernel + bias), x, n_classes)
    return judge, recipe.unknown_threshold(n_classes), float(np.mean(gate.cut))


def tta(sets: Photos, name: str, flip_name: str, on: bool) -> np.ndarray:
    x = sets.views[name]
    return (x + sets.views[flip_name]) / 2 if on else x


def summary(results: list[dict]) -> dict:
    """Mean and spread (std over folds) of every figure of `cross_validate`'s per-fold results."""
    keys = dict.fromkeys(k for m in results for k in m)
    return {k: (float(np.mean([m[k] for m in results if k in m])), float(np.std([m[k] for m in results if k in m])))
            for k in keys}


def thinned(train: np.ndarray, labels: np.ndarray, per_class: int, rng) -> np.ndarray:
    """The training mask with at most `per_class` photos of each class left, drawn at random."""
    keep = np.zeros_like(train)
    for c in np.unique(labels[train]):
        keep[rng.permutation(np.flatnonzero(train & (labels == c)))[:per_class]] = True
    return keep


def cross_validate(v: Variant, mine: Photos, cats: Photos, dogs: Photos, folds: int, repeats: int,
                   seed: int, loco: bool, per_class: int = 0, without_validation: bool = False) -> list[dict]:
    """The figures of every held-out fold (a dict each), folds fixed by `seed`: two variants meet the same folds.
    With `per_class`, each fold trains on at most that many photos of each cat (a household with few photos);
    `without_validation`, on none of the Validation folder's (judged on the same held-out photos)."""
    from train import recipe

    centre = mine.views["eval"][:, 0]
    gid = groups(mine.paths, recipe.gate_part(centre), mine.labels)
    n_classes = len(mine.names)
    tabby = [mine.names.index(n) for n in ("Chungdam", "Hwamok")] if {"Chungdam", "Hwamok"} <= set(mine.names) else None
    ev = tta(mine, "eval", "eval_flip", v.tta)
    turned = tta(mine, "turned", "turned_flip", v.tta)
    turned_views = tta(mine, "turned_views", "turned_views_flip", v.tta)
    cat_turned_views = tta(cats, "turned_views", "turned_views_flip", v.tta)
    dog_turned_views = tta(dogs, "turned_views", "turned_views_flip", v.tta)
    z = len(FACTORS)
    sideways, upside_down = [*range(z), *range(2 * z, 3 * z)], list(range(z, 2 * z))
    cat_turned, dog_turned = tta(cats, "turned", "turned_flip", v.tta), tta(dogs, "turned", "turned_flip", v.tta)
    clip = tta(mine, "clip", "clip_flip", v.tta)
    scene = tta(mine, "scene", "scene_flip", v.tta)
    bank_cols = columns(recipe.BANK_VIEWS, v, len(recipe.BANK_VIEWS))
    cat_ev = np.concatenate([tta(cats, "eval", "eval_flip", v.tta), tta(cats, "clip", "clip_flip", v.tta)], 1)
    dog_ev = tta(dogs, "eval", "eval_flip", v.tta)
    cat_scene, dog_scene = tta(cats, "scene", "scene_flip", v.tta), tta(dogs, "scene", "scene_flip", v.tta)
    # As the app sees them: each crop in len(FACTORS) views (crop-major), the surest counts. (The app
    # takes one view a frame in turn, the surest of the last len(FACTORS) frames: frames a thirtieth
    # of a second apart, which these views of one frame stand in for.)
    centre_views = tta(mine, "centre_views", "centre_views_flip", v.tta)
    clip_views = tta(mine, "clip_views", "clip_views_flip", v.tta)
    scene_views = tta(mine, "scene_views", "scene_views_flip", v.tta)
    cat_views = np.concatenate([tta(cats, "centre_views", "centre_views_flip", v.tta),
                                tta(cats, "clip_views", "clip_views_flip", v.tta)], 1)
    dog_views = tta(dogs, "centre_views", "centre_views_flip", v.tta)
    cat_scene_views = tta(cats, "scene_views", "scene_views_flip", v.tta)
    dog_scene_views = tta(dogs, "scene_views", "scene_views_flip", v.tta)
    # The Validation folder holds other days (8 of Chungdam's 10; its Train photos are one afternoon).
    from_validation = np.array([Path(p).parent.parent.name == "Validation" for p in mine.paths])
    results = []
    for r in range(repeats):
        fold = grouped_folds(gid, mine.labels, folds, seed + r)
        rng = np.random.default_rng(seed + 100 + r)
        cat_fold = rng.permutation(len(cats.names))[cats.labels] % folds
        dog_fold = rng.permutation(len(dogs.names))[dogs.labels] % folds
        for f in range(folds):
            tr, te = fold != f, fold == f
            if per_class:
                tr = thinned(tr, mine.labels, per_class, rng)
            if without_validation:
                tr = tr & ~from_validation
            bank = np.concatenate([cats.views["bank"][cat_fold != f][:, bank_cols].reshape(-1, centre.shape[1]),
                                   dogs.views["bank"][dog_fold != f][:, bank_cols].reshape(-1, centre.shape[1])])
            negatives = recipe.spread(recipe.gate_part(bank), v.merge)
            judge, t, cut = fit_and_judge(v, mine.views["train"][tr], mine.labels[tr], gid[tr], n_classes, negatives,
                                          mine.views["train_turned"][tr], bank)

            def named(x, y, judge=judge, t=t):  # share named right (unknown counts as wrong), share argmax right
                p = judge(x.reshape(-1, x.shape[-1]))
                yy = np.repeat(y, x.shape[1])
                return np.mean((p.argmax(1) == yy) & (p.max(1) >= t)), p, yy

            def surest(x, judge=judge):  # each crop's views (crop-major) -> the app's choice among them
                z = len(FACTORS)
                p = judge(x.reshape(-1, x.shape[-1]))
                n = len(p) // z
                return regions.surest(p, np.repeat(np.arange(n), z), n)

            m = {"cut": cut}
            m["centre"], p, yy = named(ev[te][:, :1], mine.labels[te])
            m["centre_argmax"] = np.mean(p.argmax(1) == yy)
            m["crops"] = named(ev[te][:, 1:], mine.labels[te])[0]
            m["clip"], p, yy = named(clip[te], mine.labels[te])
            m["clip_argmax"] = np.mean(p.argmax(1) == yy)
            if tabby:
                a, b = tabby
                shown = np.where(p.max(1) >= t, p.argmax(1), -1)
                m["chungdam_as_hwamok"] = np.mean(shown[yy == a] == b)
                m["hwamok_as_chungdam"] = np.mean(shown[yy == b] == a)
            for name, cols in (("turned_90", [0, 2]), ("turned_180", [1])):
                m[name], p, yy = named(turned[te][:, cols], mine.labels[te])
                m[name + "_argmax"] = np.mean(p.argmax(1) == yy)
            m["scene"], p, yy = named(scene[te], mine.labels[te])
            m["scene_wrong"] = np.mean((p.argmax(1) != yy) & (p.max(1) >= t))
            for name, x, per in (("centre_views", centre_views, 1), ("turned_views_90", turned_views[:, sideways], 2),
                                 ("turned_views_180", turned_views[:, upside_down], 1),
                                 ("clip_views", clip_views, len(CLIP_KEEP)),
                                 ("scene_views", scene_views, SCENE_CROPS)):
                p, yy = surest(x[te]), np.repeat(mine.labels[te], per)
                m[name] = np.mean((p.argmax(1) == yy) & (p.max(1) >= t))
                if name == "turned_views_90":
                    m["turned_views_90_argmax"] = np.mean(p.argmax(1) == yy)
                if name == "scene_views":
                    m["scene_views_wrong"] = np.mean((p.argmax(1) != yy) & (p.max(1) >= t))
                if name in ("centre_views", "clip_views") and (te & from_validation).any():
                    other_days = np.repeat(from_validation[te], per)
                    m[name + "_validation"] = np.mean(((p.argmax(1) == yy) & (p.max(1) >= t))[other_days])
                if name == "clip_views" and tabby:
                    a, b = tabby
                    shown = np.where(p.max(1) >= t, p.argmax(1), -1)
                    m["chungdam_as_hwamok_views"] = np.mean(shown[yy == a] == b)
                    m["hwamok_as_chungdam_views"] = np.mean(shown[yy == b] == a)
            for name, x, held in (("stranger_views", cat_views, cat_fold == f), ("dog_views", dog_views, dog_fold == f),
                                  ("stranger_turned_views", cat_turned_views, cat_fold == f),
                                  ("dog_turned_views", dog_turned_views, dog_fold == f),
                                  ("stranger_scene_views", cat_scene_views, cat_fold == f),
                                  ("dog_scene_views", dog_scene_views, dog_fold == f)):
                m[name] = np.mean(surest(x[held]).max(1) < t)
            for name, x, held in (("stranger_cats", cat_ev, cat_fold == f), ("dogs", dog_ev, dog_fold == f),
                                  ("stranger_turned", cat_turned, cat_fold == f),
                                  ("dog_turned", dog_turned, dog_fold == f),
                                  ("stranger_scenes", cat_scene, cat_fold == f),
                                  ("dog_scenes", dog_scene, dog_fold == f)):
                p = judge(x[held].reshape(-1, x.shape[-1]))
                m[name] = np.mean(p.max(1) < t)
            if loco and r == 0:
                out, out_views = [], []
                for c in range(n_classes):
                    keep_rows = tr & (mine.labels != c)
                    relabel = np.cumsum(np.arange(n_classes) != c) - 1
                    judge_c, t_c, _ = fit_and_judge(v, mine.views["train"][keep_rows], relabel[mine.labels[keep_rows]],
                                                    gid[keep_rows], n_classes - 1, negatives,
                                                    mine.views["train_turned"][keep_rows], bank)
                    x = np.concatenate([ev[te & (mine.labels == c)], clip[te & (mine.labels == c)]], 1)
                    out.append(np.mean(judge_c(x.reshape(-1, x.shape[-1])).max(1) < t_c))
                    x = np.concatenate([centre_views[te & (mine.labels == c)], clip_views[te & (mine.labels == c)]], 1)
                    out_views.append(np.mean(surest(x, judge_c).max(1) < t_c))
                m["leave_one_cat_out"] = float(np.mean(out))
                m["leave_one_cat_out_views"] = float(np.mean(out_views))
            results.append(m)
            print(f"  repeat {r} fold {f}: " + " ".join(f"{k} {val:.3f}" for k, val in m.items()),
                  file=sys.stderr, flush=True)
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_options(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-loco", action="store_true", help="skip leave-one-cat-out (5 more fits per fold)")
    p.add_argument("--json", type=Path, help="also write the figures here as JSON")
    p.add_argument("--bank-photos", action="store_true",
                   help="the bank's crops cut from the shipped, scaled-down photos (train/bank/), as a backbone "
                        "without train/negatives.npz gets them, not from the originals")
    p.add_argument("--per-class", type=int, default=0, metavar="N",
                   help="train each fold on at most N photos of each cat (as a household with few photos)")
    add_variant_options(p)
    p.add_argument("--versus-no-scenes", action="store_true",
                   help="also the same recipe without the framed views, on the same folds: the paired difference")
    p.add_argument("--versus-views", type=int, metavar="N",
                   help="also the same recipe with N head views, on the same folds: the paired difference "
                        "per figure")
    p.add_argument("--versus-without-validation", action="store_true",
                   help="also the same recipe with no photo of the Validation folder on the training side, on the "
                        "same folds: what learning them (train.learn_validation) is worth")
    args = p.parse_args(argv)
    if missing_data(args):
        return 2
    v = variant_of(args)
    start = time.perf_counter()
    mine, cats, dogs = load_sets(args.data, args.pets, args.weights, bank_photos=args.bank_photos)
    print(f"features ready in {time.perf_counter() - start:.0f} s; {v}", file=sys.stderr)
    folds = cross_validate(v, mine, cats, dogs, args.folds, args.repeats, args.seed, not args.no_loco, args.per_class)
    result = summary(folds)
    thin = f", at most {args.per_class} training photos per cat" if args.per_class else ""
    print(f"\n{args.folds}-fold cross-validation x {args.repeats} (seed {args.seed}{thin}), folds grouped by burst "
          f"and near-duplicate (cosine >= {NEAR_DUPLICATE}); mean +- spread (std over folds)")
    what = {"centre": "accuracy, centre squares (named right; unknown counts as wrong)",
            "crops": "accuracy, 5 crops per photo", "centre_argmax": "  the same, the top class alone (no unknown)",
            "clip_argmax": "  the same, the top class alone (no unknown)", "clip": "accuracy per clip frame (pan/zoom)",
            "chungdam_as_hwamok": "Chungdam clip frames named Hwamok",
            "hwamok_as_chungdam": "Hwamok clip frames named Chungdam",
            "stranger_cats": "Oxford cats of unseen breeds read unknown (crops + clip frames)",
            "dogs": "Oxford dogs of unseen breeds read unknown",
            "turned_90": "accuracy, centre squares turned 90 degrees either way (a camera on its side)",
            "turned_90_argmax": "  the same, the top class alone (no unknown)",
            "turned_180": "accuracy, centre squares turned upside down",
            "turned_180_argmax": "  the same, the top class alone (no unknown)",
            "stranger_turned": "Oxford cats of unseen breeds turned 90/180/270 read unknown (centre)",
            "dog_turned": "Oxford dogs of unseen breeds turned 90/180/270 read unknown (centre)",
            "scene": "accuracy, photos pasted into a room, cropped as a found cat",
            "scene_wrong": "  the same, named as another of my cats",
            "stranger_scenes": "  Oxford cats of unseen breeds so pasted read unknown",
            "dog_scenes": "  Oxford dogs of unseen breeds so pasted read unknown",
            "centre_views": f"as the app sees them (the surest of {len(FACTORS)} views, regions.zooms): centre squares",
            "clip_views": "  clip frames", "scene_views": "  photos pasted into a room",
            "centre_views_validation": "    centre squares of the held-out Validation photos (other days)",
            "clip_views_validation": "    clip frames of the held-out Validation photos (other days)",
            "turned_views_90": "  centre squares turned 90 degrees either way",
            "turned_views_90_argmax": "    the same, the top class alone (no unknown)",
            "turned_views_180": "  centre squares turned upside down",
            "stranger_turned_views": "  Oxford cats of unseen breeds turned 90/180/270 read unknown (centre)",
            "dog_turned_views": "  Oxford dogs of unseen breeds turned 90/180/270 read unknown (centre)",
            "chungdam_as_hwamok_views": "    Chungdam clip frames named Hwamok",
            "hwamok_as_chungdam_views": "    Hwamok clip frames named Chungdam",
            "scene_views_wrong": "    the same, named as another of my cats",
            "stranger_views": "  Oxford cats of unseen breeds read unknown (centre + clip frames)",
            "dog_views": "  Oxford dogs of unseen breeds read unknown (centre)",
            "stranger_scene_views": "  Oxford cats of unseen breeds pasted into a room read unknown",
            "dog_scene_views": "  Oxford dogs of unseen breeds pasted into a room read unknown",
            "leave_one_cat_out": "a left-out cat reads unknown (first repeat)",
            "leave_one_cat_out_views": "  the same, as the app sees it (centre + clip frames)",
            "cut": "open-set cut chosen (mean of the per-class cuts)"}
    for k, (mean, spread) in result.items():
        print(f"  {what.get(k, k):<66} {mean:.3f} +- {spread:.3f}")
    versus = None
    if args.versus_views or args.versus_no_scenes or args.versus_without_validation:
        from train import recipe

        other = replace(v, views=args.versus_views, ref_views=min(v.ref_views, args.versus_views)) \
            if args.versus_views else v
        if args.versus_no_scenes:
            def plain(n):
                return sum(recipe.TRAIN_VIEWS[i].scene < 0 for i in columns(recipe.TRAIN_VIEWS, other, n))
            other = replace(other, scenes=False, views=plain(other.views), ref_views=plain(other.ref_views))
        paired = cross_validate(other, mine, cats, dogs, args.folds, args.repeats, args.seed, not args.no_loco,
                                args.per_class, args.versus_without_validation)
        versus = {"variant": other.__dict__, "figures": summary(paired),
                  "minus_default": summary([{k: b[k] - a[k] for k in a if k in b} for a, b in zip(folds, paired)])}
        print(f"\nthe same folds with {other.views} head views ({other.ref_views} references, framed views "
              f"{'on' if other.scenes else 'off'}"
              f"{', no Validation photo learnt' if args.versus_without_validation else ''}): figure, and its "
              f"difference from {v.views} views (mean +- spread over folds)")
        for k, (mean, spread) in versus["figures"].items():
            d_mean, d_spread = versus["minus_default"][k]
            print(f"  {what.get(k, k):<66} {mean:.3f} +- {spread:.3f}   {d_mean:+.3f} +- {d_spread:.3f}")
    print(f"({time.perf_counter() - start:.0f} s)")
    if args.json:
        import json

        from train import recipe

        args.json.write_text(json.dumps({"variant": v.__dict__ | {"neighbours": recipe.NEIGHBOURS},
                                         "folds": args.folds, "repeats": args.repeats,
                                         "seed": args.seed, "per_class": args.per_class, "figures": result,
                                         "per_fold": [{k: float(x) for k, x in m.items()} for m in folds],
                                         "versus": versus}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
