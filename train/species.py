r"""Train the cat finder's second look (knyang_cam/cat_species.py): is a found box a cat, or a dog?

    python -m train.species --pets ../shared/data/oxford_pets \
        --weights ../shared/weights/mobilenet_v2_1.0_160_no_top.weights.h5 \
        [--cats ../shared/data/knyang/Train] --out models/finder

The finder's maps come from the backbone cut at stride 16, where a dog and a cat are alike:
pooled over a pet's box, those features tell the 74 held-out Oxford pets apart 93-96% of the time,
the whole backbone's 98-100% (a crop-level probe). So a found box gets a second look: its square
through the whole MobileNetV2 (the same offline weights, frozen) and a logistic regression
on the pooled features, a logit of "a cat". The crops are cut from generated scenes as the app
cuts a found cat (its box, a little loose or tight, grown to a square): Oxford cats and dogs cut
out along their outline or as whole photos (squares, ellipses), whole `--cats` photos, and cat-free
patches (not a cat either). The Oxford photos are split as `python -m train.finder` splits them
(the same seed): crops of the held-out fifth pick `cat_below`, the logit 99% of held-out cat crops
reach, and give the figures in species.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from knyang_cam import atomic, paths
from knyang_cam.errors import exit_status, paths_usable
from knyang_cam.extras import quiet_tensorflow
from knyang_cam.finder_model import SPECIES_FILE, SPECIES_META

from . import finder, model
from .scenes import synthetic_background

SIZE = 160  # the identity model's input: the same square a found cat is classified in
FRAME = (480, 640)  # (height, width) of the scenes the crops are cut from: the app's usual frame
KEEP_CATS = 0.99  # cat_below: the logit this share of held-out cat crops reach


def square_about(box, jitter: float, rng, width: int, height: int) -> tuple[int, int, int, int]:
    """The app's square about a found box (its longer side, centred, moved into the frame: as
    `regions.CatRegions` grows it), the box first loosened or tightened by up to `jitter` of its size
    and moved a little: the finder's boxes are not exact."""
    x, y, w, h = box
    s = rng.uniform(1 - jitter / 2, 1 + jitter)
    dx, dy = rng.uniform(-jitter / 2, jitter / 2, 2) * (w, h)
    side = min(int(max(w, h) * s), width, height)
    cx, cy = x + w / 2 + dx, y + h / 2 + dy
    return (int(min(max(cx - side / 2, 0), width - side)), int(min(max(cy - side / 2, 0), height - side)), side, side)


def one_crop(rng, cats: list, dogs: list, photos: list, backdrops: list) -> tuple[np.ndarray, int, str] | None:
    """One RGB SIZE x SIZE crop of a generated scene, its label (1 a cat) and what it shows."""
    ih, iw = FRAME
    around = backdrops[rng.integers(len(backdrops))]
    bg = finder.outside_pet(around, rng) if rng.random() < 0.5 else None
    scene = cv2.resize(bg, (iw, ih)) if bg is not None else synthetic_background(rng, FRAME)
    label = np.zeros(FRAME, np.float32)
    r = rng.random()
    if r < 0.6:  # an Oxford pet, a dog more often than a cat: the cats also come from --cats
        pet = dogs[rng.integers(len(dogs))] if r < 0.35 or not cats else cats[rng.integers(len(cats))]
        if rng.random() < 0.5:
            thing, mask = finder.outlined(pet)
        else:
            thing = finder.square_of(pet.image, rng)
            mask = finder.shape_mask(thing, rng)
        is_cat, what = int(pet.cat), "cat" if pet.cat else "dog"
    elif r < 0.9 and photos:
        thing = finder.square_of(photos[rng.integers(len(photos))], rng)
        mask, is_cat, what = finder.shape_mask(thing, rng), 1, "photo"
    else:  # a cat-free patch: the finder's rare box on clutter is no cat either
        bg = finder.outside_pet(backdrops[rng.integers(len(backdrops))], rng)
        thing = bg if bg is not None else synthetic_background(rng, finder.INPUT)
        mask, is_cat, what = finder.shape_mask(thing, rng), 0, "patch"
    box = finder.paste(scene, label, np.ascontiguousarray(thing), np.ascontiguousarray(mask), 1.0, rng,
                       rng.uniform(0.25, 0.9), [])
    if box is None:
        return None
    x, y, w, h = box
    x0, y0 = max(x, 0), max(y, 0)
    box = (x0, y0, min(x + w, iw) - x0, min(y + h, ih) - y0)
    if box[2] < 8 or box[3] < 8:
        return None
    sx, sy, side, _ = square_about(box, 0.3, rng, iw, ih)
    crop = cv2.resize(scene[sy:sy + side, sx:sx + side], (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    return crop, is_cat, what


def make_crops(seed: int, n: int, pets: list, photos: list) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`n` crops (uint8 RGB), their labels and what each shows, from the given photos only."""
    rng = np.random.default_rng(seed)
    cats, dogs = [p for p in pets if p.cat], [p for p in pets if not p.cat]
    out = []
    while len(out) < n:
        made = one_crop(rng, cats, dogs, photos, pets)
        if made is not None:
            out.append(made)
    return np.stack([m[0] for m in out]), np.array([m[1] for m in out]), [m[2] for m in out]


def build_base(weights: str):
    """The whole MobileNetV2 (alpha 1.0, SIZE; the project's loader, `train.model.build_base`), RGB 0..255
    in, average-pooled features out."""
    import keras

    base = model.build_base(model.Backbone(str(weights), image_size=SIZE))
    inp = keras.Input((SIZE, SIZE, 3), name="pixels")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inp)
    x = keras.layers.GlobalAveragePooling2D()(base(x, training=False))
    return keras.Model(inp, x, name="features")


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, steps: int = 1500) -> tuple[np.ndarray, float]:
    """Class-balanced, L2-regularised logistic regression on standardised features, by full-batch gradient
    descent (deterministic); returned as weights and bias on the raw features."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    share = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean())) / len(y)
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        g = 1 / (1 + np.exp(-(z @ w + b))) - y
        w -= 0.5 * (z.T @ (share * g) + l2 * w / len(y))
        b -= 0.5 * float((share * g).sum())
    return (w / sd).astype(np.float32), float(b - (w * mu / sd).sum())


def figures(logits: np.ndarray, what: list[str], cut: float) -> dict:
    """Per kind of held-out crop: how many, and the share `cut` decides right (cats kept, the rest turned away)."""
    what = np.array(what)
    out = {}
    for kind, name in (("cat", "oxford_cats"), ("photo", "cat_photos"), ("dog", "dogs"), ("patch", "cat_free_patches")):
        m = what == kind
        if m.any():
            kept = float((logits[m] >= cut).mean())
            out[name] = {"crops": int(m.sum()), "right": round(kept if kind in ("cat", "photo") else 1 - kept, 4)}
    return out


def export(base, w: np.ndarray, b: float, out: Path, meta: dict) -> None:
    """species.tflite (RGB 0..255 [N, SIZE, SIZE, 3] in, the cat logit [N, 1] out) and species.json."""
    import keras

    from .export import tflite_bytes

    inp = keras.Input((SIZE, SIZE, 3), name="pixels")
    dense = keras.layers.Dense(1, name="cat_logit")
    model = keras.Model(inp, dense(base(inp)), name="cat_or_not")
    dense.set_weights([w[:, None], np.array([b], np.float32)])
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_bytes(out / SPECIES_FILE, tflite_bytes(model))
    atomic.write_text(out / SPECIES_META, json.dumps(meta, indent=2) + "\n")


def check_paths(args: argparse.Namespace) -> None:
    """Every path before any work: the inputs exist, --out is a cat finder's folder (or new) outside them."""
    finder.check_sources_and_out(args)
    paths.check_writable("--out", args.out / SPECIES_FILE)


def main(argv=None) -> int:
    """The `python -m train.species` entry point: make crops, fit the logit, write --out; 0, or 2 with one line."""
    p = finder.parser("species", __doc__)
    p.add_argument("--crops", type=finder._at_least_one, default=3000,
                   help="training crops to make (default: %(default)s)")
    p.add_argument("--l2", type=float, default=10.0,
                   help="L2 strength of the logistic regression (default: %(default)s)")
    p.add_argument("--seed", type=int, default=1337,
                   help="seed of the crops and of the held-out split, as train.finder's (default: %(default)s)")
    args = p.parse_args(argv)
    return exit_status(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    with paths_usable():
        check_paths(args)
    quiet_tensorflow(args.verbose)
    t0 = time.perf_counter()
    train_pets, val_pets = finder.split_pets(finder.load_pets(args.pets, max_side=480), args.seed)
    photos_train, photos_val = finder.split_photos(finder.load_photos(args.cats, max_side=480))
    x_img, y, _ = make_crops(args.seed, args.crops, train_pets, photos_train)
    xv_img, yv, what = make_crops(args.seed + 1, max(400, args.crops // 4), val_pets, photos_val)
    base = build_base(args.weights)
    x = base.predict(x_img.astype(np.float32), batch_size=64, verbose=0)
    xv = base.predict(xv_img.astype(np.float32), batch_size=64, verbose=0)
    print(f"{len(x)} training crops ({int(y.sum())} cats), {len(xv)} held-out ({time.perf_counter() - t0:.0f} s)")
    w, b = fit_logistic(x, y, args.l2)
    logits = xv @ w + b
    cut = float(np.quantile(logits[yv == 1], 1 - KEEP_CATS))
    held_out = figures(logits, what, cut)
    print(f"cat_below {cut:.2f}: held-out crops decided right: "
          + ", ".join(f"{k} {v['right']:.3f} of {v['crops']}" for k, v in held_out.items()))
    meta = {"input_size": [SIZE, SIZE], "cat_below": round(cut, 4),
            "backbone": {"name": "MobileNetV2", "alpha": 1.0, "weights": Path(args.weights).name},
            "training": {"crops": len(x), "cat_crops": int(y.sum()), "l2": args.l2, "seed": args.seed,
                         "oxford_photos": len(train_pets)},
            "held_out": held_out}
    export(base, w, b, args.out, meta)
    print(f"wrote {args.out / SPECIES_FILE} and {SPECIES_META} ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
