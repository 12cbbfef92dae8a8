r"""Train the cat finder (knyang_cam/cat_finder.py) on scenes made from Oxford-IIIT Pet photos.

    python -m train.finder --pets ../shared/data/oxford_pets \
        --weights ../shared/weights/mobilenet_v2_1.0_160_no_top.weights.h5 \
        [--cats ../shared/data/knyang/Train] --out models/finder

Scenes (seeded, so a run repeats): 15% are two or three cats side by side, touching or nearly
(`side_by_side`), so that touching cats get a box each rather than one over both; the rest are a
background (an Oxford photo with its cat or dog, a part of
an Oxford photo outside the pet, or a synthetic flat, noisy, striped or blotchy picture), with
0-3 things pasted at random places and sizes (down to a quarter of the frame height): cats cut
out along their outline (positives), dogs cut the same way (negatives: a dog is not a cat),
whole photos of cats (`--cats`, e.g. the Knyang Train photos; never Validation photos, which
the bench uses) or of dogs as rectangles or ellipses, and cat-free patches. The target of a
cell is the share of it covered by a cat. The backbone (MobileNetV2 cut at stride 16) is
frozen: its features of every scene are computed once and cached, then only the head trains
(seconds an epoch). The Oxford photos are split by photo: the held-out fifth makes the scenes
that pick the threshold and give the figures in finder.json.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from knyang_cam import atomic, paths
from knyang_cam.errors import OneLineParser, UserError, exit_status, paths_usable
from knyang_cam.extras import quiet_tensorflow
from knyang_cam.finder_model import CELL, META_FILE, SPECIES_FILE, SPECIES_META, TFLITE_FILE, boxes_from_scores
from knyang_cam.results import iou

from .features import default_cache_dir
from .model import check_weights_file
from .scenes import synthetic_background

INPUT = (192, 256)  # (height, width): 640x480 frames shrink 2.5x; a cat a quarter of it high spans 3 cells
# The app's second pass for small cats (knyang_cam.finder_model.with_small_cats): the same network at
# 1.5x, where a quarter-high cat spans 4-5 cells. On scenes of held-out Oxford cats it found
# 0.82-0.87 of the small ones against 0.65-0.69, and no more boxes on no cat (bench/find_cats.py).
FINE_INPUT = (288, 384)
FINE_BELOW = 0.4
ONE_CAT_COVER = 0.6  # finder_model.one_cat_filling
CUT = "block_13_expand_relu"  # stride 16, 576 channels: the last layer before the stride-32 blocks
IMAGE_EXTS = {".jpg", ".jpeg", ".png"}


@dataclass
class Pet:
    """One Oxford-IIIT Pet photo (RGB) with its 0/1 outline mask, whether it is a cat, and its file name."""

    image: np.ndarray  # RGB
    mask: np.ndarray  # uint8 0/1, the pet's outline filled
    cat: bool
    name: str  # the photo's file name


def polygon_mask(entry: dict, width: int, height: int) -> np.ndarray:
    """The pet's outline (foreground and its trimap boundary) filled, as a 0/1 mask."""
    mask = np.zeros((height, width), np.uint8)
    for part in ("foreground", "boundary"):
        points = (entry.get(part) or {}).get("polygon") or []
        if len(points) >= 3:
            poly = np.array([[p["x"] * width, p["y"] * height] for p in points], np.int32)
            cv2.fillPoly(mask, [poly], 1)
    return mask


def load_pets(root: Path, max_side: int = 320) -> list[Pet]:
    """Every Oxford photo with its outline, shrunk so the longer side is at most `max_side`."""
    polygons = json.loads((root / "annotations" / "foreground_polygons.json").read_text())
    pets = []
    for species, breeds in sorted(polygons.items()):
        for breed in sorted(breeds):
            for entry in sorted(breeds[breed], key=lambda e: e["filename"]):
                image = cv2.imread(str(root / species / entry["filename"]), cv2.IMREAD_COLOR)
                if image is None:
                    continue
                s = min(1.0, max_side / max(image.shape[:2]))
                image = cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
                mask = polygon_mask(entry, image.shape[1], image.shape[0])
                if mask.sum() > 0.02 * mask.size:
                    pets.append(Pet(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), mask, species == "cats",
                                    entry["filename"]))
    if not pets:
        raise UserError(f"no Oxford-IIIT Pet photos with outlines under {root}")
    return pets


def split_pets(pets: list[Pet], seed: int) -> tuple[list[Pet], list[Pet]]:
    """The Oxford photos split by photo: (training, the held-out fifth), the same for one seed."""
    order = np.random.default_rng(seed).permutation(len(pets))
    held = set(order[: len(pets) // 5].tolist())
    return [p for i, p in enumerate(pets) if i not in held], [p for i, p in enumerate(pets) if i in held]


def load_photos(root: Path | None, max_side: int = 240) -> list[np.ndarray]:
    """Whole cat photos (RGB, shrunk) from ROOT/<class>/*: pasted as rectangles or ellipses."""
    if root is None:
        return []
    out = []
    for f in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS):
        image = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if image is not None:
            s = min(1.0, max_side / max(image.shape[:2]))
            out.append(cv2.cvtColor(cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA),
                                    cv2.COLOR_BGR2RGB))
    return out


def split_photos(photos: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """load_photos' photos: (training, every fifth held out), the finder's and the second look's alike."""
    return [ph for i, ph in enumerate(photos) if i % 5], [ph for i, ph in enumerate(photos) if not i % 5]


# ---- scenes --------------------------------------------------------------------------------

def fit_crop(image: np.ndarray, rng, zoom: float = 1.0) -> tuple[np.ndarray, tuple]:
    """A random window of `image` in the input's aspect, `zoom` times smaller than the largest one."""
    h, w = image.shape[:2]
    ih, iw = INPUT
    cw = min(w, h * iw / ih) / zoom
    ch = cw * ih / iw
    x0, y0 = rng.uniform(0, w - cw), rng.uniform(0, h - ch)
    s = iw / cw
    m = np.float32([[s, 0, -x0 * s], [0, s, -y0 * s]])
    return m, (iw, ih)


def warp(image, m, size, interp=cv2.INTER_AREA):
    """`image` through the 2x3 affine `m` into a picture of `size` (width, height), borders reflected."""
    return cv2.warpAffine(image, m, size, flags=interp, borderMode=cv2.BORDER_REFLECT)


def outlined(pet: Pet) -> tuple[np.ndarray, np.ndarray]:
    """The pet cut out along its outline: the photo within the outline's box, and the outline as a float mask."""
    ys, xs = np.nonzero(pet.mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return pet.image[y0:y1, x0:x1], pet.mask[y0:y1, x0:x1].astype(np.float32)


def outside_pet(pet: Pet, rng) -> np.ndarray | None:
    """The largest strip of an Oxford photo beside the pet's box, as a background; None if too thin."""
    ys, xs = np.nonzero(pet.mask)
    h, w = pet.mask.shape
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    strips = [(0, 0, x0, h), (x1, 0, w - x1, h), (0, 0, w, y0), (0, y1, w, h - y1)]
    x, y, sw, sh = max(strips, key=lambda s: s[2] * s[3])
    if sw < 0.25 * w and sh < 0.25 * h or sw < 24 or sh < 24:
        return None
    patch = pet.image[y:y + sh, x:x + sw]
    return cv2.resize(patch, (INPUT[1], INPUT[0]), interpolation=cv2.INTER_LINEAR)


def paste(scene, label, thing, mask, value, rng, height_frac, taken) -> tuple | None:
    """Paste `thing` where `mask` is set, `height_frac` of the scene high, somewhere not yet taken.

    Returns its box (x, y, w, h), or None when no free place was found.
    """
    ih, iw = scene.shape[:2]
    th = height_frac * ih
    s = th / thing.shape[0]
    tw = thing.shape[1] * s
    if tw > iw * 0.95:
        s *= iw * 0.95 / tw
    th, tw = thing.shape[0] * s, thing.shape[1] * s
    for _ in range(20):
        # Up to a fifth of the thing may hang out of the frame: cats walk in from the edges.
        x = rng.uniform(-0.2 * tw, iw - 0.8 * tw)
        y = rng.uniform(-0.2 * th, ih - 0.8 * th)
        box = (int(x), int(y), int(tw), int(th))
        if all(iou(box, t) < 0.05 for t in taken):
            break
    else:
        return None
    taken.append(box)
    blend(scene, label, thing, mask, value, s, x, y)
    return box


def blend(scene, label, thing, mask, value, s: float, x: float, y: float, interp: int | None = None) -> None:
    """`thing` scaled by `s` with its top left at (x, y), blended in where `mask` is set; `label` gets `value` there."""
    ih, iw = scene.shape[:2]
    m = np.float32([[s, 0, x], [0, s, y]])
    if interp is None:
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    warped = cv2.warpAffine(thing, m, (iw, ih), flags=interp)
    alpha = cv2.warpAffine(mask.astype(np.float32), m, (iw, ih), flags=cv2.INTER_LINEAR)[..., None]
    scene[:] = (scene * (1 - alpha) + warped * alpha).astype(np.uint8)
    label[:] = label * (1 - alpha[..., 0]) + value * alpha[..., 0]


def shape_mask(image: np.ndarray, rng) -> np.ndarray:
    """A whole photo pasted as a rectangle or an ellipse: the shape as its mask."""
    h, w = image.shape[:2]
    if rng.random() < 0.5:
        return np.ones((h, w), np.float32)
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (w // 2, h // 2), (w // 2, h // 2), 0, 0, 360, 1.0, -1)
    return mask


def square_of(image: np.ndarray, rng) -> np.ndarray:
    """A random square of a photo, 70-100% of its shorter side: how the bench cuts cats out."""
    h, w = image.shape[:2]
    side = int(min(h, w) * rng.uniform(0.7, 1.0))
    x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
    return image[y:y + side, x:x + side]


def make_scene(rng, pets: list[Pet], photos: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, list]:
    """One RGB scene at the input size, its per-pixel cat mask (float 0..1) and each cat's box."""
    ih, iw = INPUT
    cats = [p for p in pets if p.cat]
    dogs = [p for p in pets if not p.cat]
    label = np.zeros((ih, iw), np.float32)
    boxes = []
    r = rng.random()
    if r < 0.15 and photos:  # cats side by side, touching or nearly: one box each, never one over both
        bg = outside_pet(pets[rng.integers(len(pets))], rng) if rng.random() < 0.5 else None
        scene = bg if bg is not None else synthetic_background(rng, INPUT)
        boxes = side_by_side(scene, label, rng, cats, photos)
        n_things = 0
    elif r < 0.3:  # a whole Oxford photo: its cat or dog in its own surroundings
        pet = pets[rng.integers(len(pets))]
        m, size = fit_crop(pet.image, rng, rng.uniform(1.0, 1.5))
        scene = warp(pet.image, m, size)
        if pet.cat:
            label = warp(pet.mask.astype(np.float32), m, size, cv2.INTER_LINEAR)
            boxes += cat_boxes(label)
        n_things = int(rng.integers(0, 2))
    else:
        bg = outside_pet(pets[rng.integers(len(pets))], rng) if r < 0.55 else None
        scene = bg if bg is not None else synthetic_background(rng, INPUT)
        n_things = int(rng.choice([0, 1, 1, 2, 2, 3]))
    taken = []
    for _ in range(n_things):
        kind = rng.random()
        frac = rng.uniform(0.25, 0.9)
        if kind < 0.35:
            pet = cats[rng.integers(len(cats))]
        elif kind < 0.6:
            pet = dogs[rng.integers(len(dogs))]
        else:
            pet = None
        if pet is not None:
            thing, mask = outlined(pet)
            if rng.random() < 0.5:
                thing, mask = thing[:, ::-1], mask[:, ::-1]
            box = paste(scene, label, np.ascontiguousarray(thing), np.ascontiguousarray(mask), float(pet.cat), rng,
                        frac, taken)
            if pet.cat and box:
                boxes.append(box)
            continue
        if kind < 0.8 and photos:  # a whole photo of a cat, cut as the bench does
            thing = photos[rng.integers(len(photos))]
            thing = square_of(thing, rng) if rng.random() < 0.6 else thing
            box = paste(scene, label, thing, shape_mask(thing, rng), 1.0, rng, frac, taken)
            if box:
                boxes.append(box)
        elif kind < 0.92:  # a whole photo of a dog, the same way
            thing = dogs[rng.integers(len(dogs))].image
            thing = square_of(thing, rng) if rng.random() < 0.6 else thing
            paste(scene, label, thing, shape_mask(thing, rng), 0.0, rng, frac, taken)
        else:  # a cat-free patch: pasted rectangles must not read "cat" by their edges alone
            bg = outside_pet(pets[rng.integers(len(pets))], rng)
            thing = bg if bg is not None else synthetic_background(rng, INPUT)
            paste(scene, label, thing, shape_mask(thing, rng), 0.0, rng, frac * 0.8, taken)
    boxes = visible(boxes, label)
    if rng.random() < 0.5:
        scene, label = scene[:, ::-1], label[:, ::-1]
        boxes = [(iw - x - w, y, w, h) for x, y, w, h in boxes]
    return np.ascontiguousarray(scene), np.ascontiguousarray(label), boxes


def side_by_side(scene, label, rng, cats: list[Pet], photos: list[np.ndarray]) -> list:
    """Two or three cats in a row, 30-55% of the height, 0-6% of the width apart (or overlapping 2%): their boxes."""
    ih, iw = INPUT
    things = []
    for _ in range(int(rng.choice([2, 2, 3]))):
        if rng.random() < 0.7:  # a whole photo of a cat, cut as the bench does
            thing = square_of(photos[rng.integers(len(photos))], rng)
            things.append((thing, shape_mask(thing, rng)))
        else:
            things.append(outlined(cats[rng.integers(len(cats))]))
    heights = rng.uniform(0.3, 0.55, len(things)) * ih
    widths = np.array([h * t.shape[1] / t.shape[0] for h, (t, _) in zip(heights, things)])
    gaps = rng.uniform(-0.02, 0.06, len(things) - 1) * iw
    fit = min(1.0, 0.95 * iw / (widths.sum() + gaps.sum()))
    heights, widths, gaps = heights * fit, widths * fit, gaps * fit
    x = rng.uniform(0, iw - (widths.sum() + gaps.sum()))
    boxes = []
    for k, ((thing, mask), h, w) in enumerate(zip(things, heights, widths)):
        y = rng.uniform(0, ih - h)
        blend(scene, label, np.ascontiguousarray(thing), np.ascontiguousarray(mask), 1.0, h / thing.shape[0], x, y,
              cv2.INTER_AREA)
        boxes.append((int(x), int(y), int(w), int(h)))
        x += w + (gaps[k] if k < len(gaps) else 0)
    return boxes


def visible(boxes: list, label: np.ndarray) -> list:
    """Each cat's box cut to the frame and to what later pastes left of it; mostly hidden cats dropped."""
    out = []
    for x, y, w, h in boxes:
        x0, y0 = max(x, 0), max(y, 0)
        part = label[y0:max(y + h, 0), x0:max(x + w, 0)] > 0.5
        if part.sum() < 0.3 * w * h * 0.5:  # a cut-out cat fills about half its box
            continue
        ys, xs = np.nonzero(part)
        out.append((x0 + int(xs.min()), y0 + int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)))
    return out


def cell_targets(label: np.ndarray, boxes: list) -> np.ndarray:
    """[gh, gw, 2] targets: the share of each 16x16 cell covered by a cat, and each cat's centre
    as a Gaussian bump (spread a fifth of its box) that tells two touching cats apart."""
    ih, iw = label.shape
    gh, gw = ih // CELL, iw // CELL
    cover = cv2.resize(label, (gw, gh), interpolation=cv2.INTER_AREA)
    centre = np.zeros((gh, gw), np.float32)
    cy, cx = (np.mgrid[0:gh, 0:gw] + 0.5) * CELL
    for x, y, w, h in boxes:
        bump = np.exp(-0.5 * (((cx - x - w / 2) / (0.2 * w)) ** 2 + ((cy - y - h / 2) / (0.2 * h)) ** 2))
        centre = np.maximum(centre, bump.astype(np.float32))
    return np.stack([cover, centre], -1)


def cat_boxes(label: np.ndarray) -> list[tuple]:
    """The box of every cat in a scene's mask (connected parts of at least 1% of the frame)."""
    n, _, stats, _ = cv2.connectedComponentsWithStats((label > 0.5).astype(np.uint8), connectivity=8)
    return [tuple(int(v) for v in stats[i][:4]) for i in range(1, n) if stats[i][4] > 0.01 * label.size]


# ---- networks ------------------------------------------------------------------------------

def build_trunk(weights: str):
    """MobileNetV2 (alpha 1.0) at the input size, cut at stride 16, taking RGB 0..255."""
    import keras

    path = Path(weights)
    if not path.is_file():
        raise UserError(f"weights file not found: {path} (give a MobileNetV2 no-top .weights.h5 file)")
    try:
        base = keras.applications.MobileNetV2(input_shape=(*INPUT, 3), alpha=1.0, include_top=False,
                                              weights=str(path))
    except (OSError, ValueError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot load weights {path}: they are not MobileNetV2 1.0 no-top weights ({reason})") from None
    inp = keras.Input((*INPUT, 3), name="pixels")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inp)
    cut = keras.Model(base.input, base.get_layer(CUT).output)
    return keras.Model(inp, cut(x, training=False), name="trunk")


def build_head(channels: int, seed: int):
    """1x1 conv down to 48 channels -> 3x3 conv (the neighbouring cells' context) -> sigmoid per cell.

    The 1x1 reduction first makes the head ten times cheaper than a 3x3 conv on the 576 channels.
    """
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((None, None, channels))
    x = keras.layers.Dropout(0.2)(inp)
    x = keras.layers.Conv2D(48, 1, activation="relu")(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    # Two maps: "on a cat" (the blobs' extent) and "a cat's centre" (one peak per cat).
    out = keras.layers.Conv2D(2, 1, activation="sigmoid")(x)
    return keras.Model(inp, out, name="head")


def features(trunk, scenes: np.ndarray, cache: Path, key: str) -> np.ndarray:
    """Trunk features of the scenes (float16), cached on disk under `key`."""
    file = cache / f"finder-{key}.npy"
    if file.is_file():
        return np.load(file)
    out = np.concatenate([trunk.predict(scenes[i:i + 64], verbose=0).astype(np.float16)
                          for i in range(0, len(scenes), 64)])
    cache.mkdir(parents=True, exist_ok=True)
    np.save(str(file) + ".tmp.npy", out)
    Path(str(file) + ".tmp.npy").replace(file)
    return out


def fit_head(head, x, y, xv, yv, epochs: int, seed: int) -> None:
    """Fit `head` in place on features `x` -> cell targets `y` (Adam, binary cross-entropy), validated on `xv`, `yv`."""
    import keras

    head.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    head.fit(x, y, validation_data=(xv, yv), epochs=epochs, batch_size=64,
             shuffle=True, verbose=2)


def evaluate(maps: np.ndarray, truths: list, threshold: float, peak: float, min_cells: float,
             centre_peak: float) -> dict:
    """Object-level figures on held-out scenes: cats found (IoU >= 0.5), false boxes per scene."""
    found = shown = false = 0
    for m, truth in zip(maps, truths):
        blobs = boxes_from_scores(m, (INPUT[1], INPUT[0]), threshold, peak, min_cells, centre_peak)
        used = set()
        for t in truth:
            best = max(range(len(blobs)), key=lambda i: iou(t, blobs[i].box), default=None)
            if best is not None and best not in used and iou(t, blobs[best].box) >= 0.5:
                used.add(best)
                found += 1
        # A box that overlaps no cat at all names a cat where there is none.
        false += sum(1 for b in blobs if all(iou(t, b.box) < 0.1 for t in truth))
        shown += len(truth)
    return {"recall": round(found / max(shown, 1), 4), "false_per_scene": round(false / len(maps), 4),
            "cats": shown, "scenes": len(maps)}


def pick_threshold(maps, truths, min_cells: float) -> tuple[float, float, float, dict]:
    """The (extent, peak, centre peak) thresholds with the best recall minus 3x false boxes per scene.

    A wrong box costs three found ones: on screen it names a cat where there is none.
    """
    best = None
    for t in (0.3, 0.4, 0.5):
        for peak in (0.7, 0.8, 0.9):
            for centre in (0.2, 0.3, 0.4):
                m = evaluate(maps, truths, t, peak, min_cells, centre)
                value = m["recall"] - 3 * m["false_per_scene"]
                if best is None or value > best[0]:
                    best = (value, t, peak, centre, m)
    return best[1:]


def export(trunk, head, out: Path, meta: dict) -> None:
    """finder.tflite (trunk + head, RGB 0..255 in, [1, gh, gw, 2] maps out) and finder.json."""
    import keras

    from train.export import tflite_bytes

    inp = keras.Input((*INPUT, 3), batch_size=1, name="pixels")
    model = keras.Model(inp, head(trunk(inp)), name="cat_finder")
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_bytes(out / TFLITE_FILE, tflite_bytes(model))
    atomic.write_text(out / META_FILE, json.dumps(meta, indent=2) + "\n")


def scenes(seed: int, n: int, pets, photos) -> tuple[np.ndarray, np.ndarray, list]:
    """`n` scenes, their cat masks and their cats' boxes."""
    rng = np.random.default_rng(seed)
    made = [make_scene(rng, pets, photos) for _ in range(n)]
    return np.stack([m[0] for m in made]), np.stack([m[1] for m in made]), [m[2] for m in made]


def _at_least_one(text: str) -> int:
    """--scenes, --epochs: a whole number from 1, or argparse's one-line error."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"give a whole number from 1, not {text!r}")
    return n


# What --out may already hold: the finder's files (and the bundled folder's README); a folder with anything
# else is the user's, not a cat finder's.
OUT_ENTRIES = (TFLITE_FILE, META_FILE, SPECIES_FILE, SPECIES_META, "README.md")


def check_sources_and_out(args: argparse.Namespace) -> None:
    """--pets, --weights and --cats exist; --out is a cat finder's folder (or new) outside them. Shared with
    train.species, which writes into the same folder."""
    if not (args.pets / "annotations" / "foreground_polygons.json").is_file():
        raise UserError(f"--pets {args.pets} is not the Oxford-IIIT Pet sample: it has no "
                        f"annotations/foreground_polygons.json (give the folder with cats/, dogs/, annotations/)")
    check_weights_file(args.weights, names=())
    if args.cats is not None and not args.cats.is_dir():
        raise UserError(f"--cats folder not found: {args.cats}")
    out = args.out
    if out.exists() and not out.is_dir():
        raise paths.PathError(f"--out {out} is a file, not a folder: give the cat finder's folder")
    if out.is_dir():
        foreign = sorted(e.name for e in out.iterdir() if e.name not in OUT_ENTRIES and atomic.temp_pid(e.name) is None)
        if foreign:
            raise paths.PathError(f"--out {out} holds {', '.join(foreign[:3])}, not a cat finder's files: "
                                  f"choose a new folder or the cat finder's own (models/finder)")
    for flag, folder in sources(args):
        if paths.is_within(out, folder) or paths.is_within(folder, out):
            raise paths.PathError(f"--out {out} overlaps {flag} {folder}: write it somewhere else")


def sources(args: argparse.Namespace) -> list[tuple[str, Path]]:
    """The input paths given, by option: nothing may be written inside them."""
    given = (("--pets", args.pets), ("--cats", args.cats), ("--weights", Path(args.weights)))
    return [(flag, folder) for flag, folder in given if folder is not None]


def check_paths(args: argparse.Namespace) -> None:
    """Every path, before any work: the inputs exist; --out is a cat finder's folder (or new) and --out and
    --cache are outside --pets and --cats (the finder's files and 600 MB of features are never photos)."""
    check_sources_and_out(args)
    out = args.out
    for flag, folder in sources(args):
        if paths.is_within(args.cache, folder) or paths.is_within(folder, args.cache):
            raise paths.PathError(f"--cache {args.cache} overlaps {flag} {folder}: write it somewhere else")
    if args.cache.exists() and not args.cache.is_dir():
        raise paths.PathError(f"--cache {args.cache} is a file, not a folder: give a folder for the features")
    if paths.is_within(args.cache, out) or paths.is_within(out, args.cache):
        raise paths.PathError(f"--cache {args.cache} overlaps --out {out}: keep the features in a folder of their own")
    paths.check_writable("--out", out / TFLITE_FILE)


def parser(module: str, doc: str) -> OneLineParser:
    """The command line of a cat finder builder (train.finder, train.species): its sources and --out."""
    from .__main__ import prog_name

    p = OneLineParser(prog=prog_name(module), description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pets", type=Path, required=True, help="the Oxford-IIIT Pet sample (cats/, dogs/, annotations/)")
    p.add_argument("--weights", required=True, help="MobileNetV2 1.0 no-top .weights.h5")
    p.add_argument("--cats", type=Path, help="extra cat photos ROOT/<class>/*.jpg pasted whole (training photos only)")
    p.add_argument("--out", type=Path, default=Path("models/finder"),
                   help="the cat finder's folder to write into (default: %(default)s, the one the app uses)")
    p.add_argument("--verbose", action="store_true", help="keep TensorFlow's own start-up log")
    return p


def main(argv=None) -> int:
    """The `python -m train.finder` entry point: make scenes, train the head, write --out; 0, or 2 with one line."""
    p = parser("finder", __doc__)
    p.add_argument("--scenes", type=_at_least_one, default=2400, help="training scenes to make (default: %(default)s)")
    p.add_argument("--epochs", type=_at_least_one, default=25, help="epochs of the head (default: %(default)s)")
    p.add_argument("--min-cells", type=float, default=3.0,
                   help="smallest blob, in cells of 16x16 input pixels (default: %(default)s)")
    p.add_argument("--seed", type=int, default=1337,
                   help="seed of the scenes, the held-out split and the head (default: %(default)s)")
    p.add_argument("--cache", type=Path, default=default_cache_dir("finder"),
                   help="folder for the scenes' backbone features (default: %(default)s)")
    args = p.parse_args(argv)
    return exit_status(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    with paths_usable():
        check_paths(args)
    quiet_tensorflow(args.verbose)  # after the checks: it imports TensorFlow (seconds before their one line)
    t0 = time.perf_counter()

    pets = load_pets(args.pets)
    train_pets, val_pets = split_pets(pets, args.seed)
    photos = load_photos(args.cats)
    photos_train, photos_val = split_photos(photos)
    x_img, y_mask, y_boxes = scenes(args.seed, args.scenes, train_pets, photos_train)
    xv_img, yv_mask, yv_boxes = scenes(args.seed + 1, max(200, args.scenes // 6), val_pets, photos_val)
    print(f"{len(pets)} Oxford photos ({sum(pt.cat for pt in pets)} cats), {len(photos)} whole cat photos; "
          f"{len(x_img)} training scenes, {len(xv_img)} held-out scenes ({time.perf_counter() - t0:.0f} s)")

    trunk = build_trunk(args.weights)
    key = hashlib.sha256(json.dumps([Path(args.weights).stat().st_size, str(args.pets.resolve()),
                                     str(args.cats), args.scenes, args.seed, INPUT, CUT]).encode()
                         + x_img[:50].tobytes()).hexdigest()[:16]
    x = features(trunk, x_img, args.cache, key + "-train")
    xv = features(trunk, xv_img, args.cache, key + "-val")
    print(f"features {x.shape} ({time.perf_counter() - t0:.0f} s)")
    # float16 features as float32 once, not per epoch (1 GB for 2400 scenes).
    x, xv = x.astype(np.float32), xv.astype(np.float32)
    y = np.stack([cell_targets(m, b) for m, b in zip(y_mask, y_boxes)])
    yv = np.stack([cell_targets(m, b) for m, b in zip(yv_mask, yv_boxes)])

    head = build_head(x.shape[-1], args.seed)
    fit_head(head, x, y, xv, yv, args.epochs, args.seed)
    scores = head.predict(xv, verbose=0)
    threshold, peak, centre_peak, figures = pick_threshold(scores, yv_boxes, args.min_cells)
    print(f"head trained ({time.perf_counter() - t0:.0f} s); threshold {threshold}, peak {peak}, centre peak "
          f"{centre_peak}: held-out scenes "
          f"recall {figures['recall']:.3f} of {figures['cats']} cats, "
          f"{figures['false_per_scene']:.3f} false boxes per scene")
    meta = {"input_size": list(INPUT), "threshold": threshold, "peak": peak, "min_cells": args.min_cells,
            "centre_peak": centre_peak, "fine_input_size": list(FINE_INPUT), "fine_below": FINE_BELOW,
            "one_cat_cover": ONE_CAT_COVER,
            "backbone": {"name": "MobileNetV2", "alpha": 1.0, "cut": CUT, "stride": CELL,
                         "weights": Path(args.weights).name},
            "training": {"scenes": args.scenes, "epochs": args.epochs, "seed": args.seed,
                         "oxford_photos": len(train_pets), "whole_cat_photos": len(photos_train)},
            "held_out": figures,
            # Photos no training scene showed: the bench may use them (e.g. its dog scenes).
            "held_out_photos": sorted(pt.name for pt in val_pets)}
    export(trunk, head, args.out, meta)
    print(f"wrote {args.out / TFLITE_FILE} and {META_FILE} ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
