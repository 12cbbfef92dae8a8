"""Crops of a photo framed in a scene: what the app's crop of a found cat looks like.

The app's crop around a found cat (knyang_cam/regions.py, `regions.expand_cat`) is a square about
the cat's size, so it shows some of the room around the cat: a strip beside it, the corners
around a round cut-out. Training photos have their own background up to the edge. A `View` with
`scene >= 0` places its crop, shrunk to INSET of the side, into a drawn cat-free background
(flat, gradient, stripes, checks, blotches, blocks), as a square or a disc, so that the head and
the open-set gate have seen a cat with foreign surroundings. Drawn, not photographed: no
picture is shipped, and the photo backgrounds of bench/quality.py and bench/find_cats.py stay
unseen. Everything is seeded by the view's number and the crop's own pixels, so a view of a
photo is the same crop every time (the feature cache keys it by name).
"""
from __future__ import annotations

import cv2
import numpy as np

# The photo's share of the framed crop's side: the app's box around a found cat is about the
# cat's size (bench/find_cats.py measured box side / cat side ~1.03) but seldom exactly on it.
INSET = (0.7, 0.95)
# Part of the view's cache name: bump it when the framing changes, so cached features are not reused.
VERSION = 1


def synthetic_background(rng, shape: tuple[int, int]) -> np.ndarray:
    """A cat-free (height, width) picture: flat, gradient, stripes, checks or blotches, with noise and shapes."""
    ih, iw = shape
    kind = rng.integers(5)
    base = rng.integers(0, 256, 3).astype(np.float32)
    if kind == 0:
        img = np.broadcast_to(base, (ih, iw, 3)).copy()
    elif kind == 1:
        other = rng.integers(0, 256, 3).astype(np.float32)
        t = np.linspace(0, 1, iw if rng.random() < 0.5 else ih, dtype=np.float32)
        t = t[None, :, None] if t.size == iw else t[:, None, None]
        img = np.broadcast_to(base * (1 - t) + other * t, (ih, iw, 3)).copy()
    elif kind == 2:
        other = rng.integers(0, 256, 3).astype(np.float32)
        yy, xx = np.mgrid[0:ih, 0:iw].astype(np.float32)
        a, period = rng.uniform(0, np.pi), rng.uniform(4, 40)
        t = (np.sin((xx * np.cos(a) + yy * np.sin(a)) * 2 * np.pi / period) > 0).astype(np.float32)[..., None]
        img = base * (1 - t) + other * t
    elif kind == 3:
        other = rng.integers(0, 256, 3).astype(np.float32)
        c = int(rng.integers(6, 48))
        yy, xx = np.mgrid[0:ih, 0:iw]
        t = (((yy // c) + (xx // c)) % 2).astype(np.float32)[..., None]
        img = base * (1 - t) + other * t
    else:
        small = rng.uniform(0, 255, (int(rng.integers(2, 12)), int(rng.integers(2, 16)), 3)).astype(np.float32)
        img = cv2.resize(small, (iw, ih), interpolation=cv2.INTER_CUBIC)
    for _ in range(int(rng.integers(0, 5))):  # furniture-like blocks
        x, y = int(rng.integers(0, iw)), int(rng.integers(0, ih))
        cv2.rectangle(img, (x, y), (x + int(rng.integers(10, 120)), y + int(rng.integers(10, 90))),
                      tuple(float(v) for v in rng.integers(0, 256, 3)), -1)
    img += rng.normal(0, rng.uniform(0, 20), img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def framed(square: np.ndarray, scene: int) -> np.ndarray:
    """`square` ([S, S, 3] uint8) shrunk into a drawn background of the same size; seeded by `scene` and its pixels."""
    size = square.shape[0]
    rng = np.random.default_rng([VERSION, scene, int(square[::7, ::7].sum(dtype=np.int64))])
    inner = max(1, int(round(size * rng.uniform(*INSET))))
    canvas = synthetic_background(rng, (size, size))
    thing = cv2.resize(square, (inner, inner), interpolation=cv2.INTER_AREA)
    inside = np.ones((inner, inner), bool)
    if rng.random() < 0.5:  # a round cut-out: the corners show the scene
        disc = np.zeros((inner, inner), np.uint8)
        cv2.ellipse(disc, (inner // 2, inner // 2), (inner // 2, inner // 2), 0, 0, 360, 1, -1)
        inside = disc > 0
    x, y = (int(v) for v in rng.integers(0, size - inner + 1, 2))
    canvas[y:y + inner, x:x + inner][inside] = thing[inside]
    return canvas
