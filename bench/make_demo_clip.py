"""Make a pan-and-zoom video from cat photos, with the true cat of every frame.

    python bench/make_demo_clip.py          # assets/demo.mp4: one photo per cat, 2.5 s each at 15 FPS
    python bench/make_demo_clip.py --all --seconds 4 --fps 30 --out /tmp/clip.mp4   # every photo, + labels

Each photo gets a slow, eased pan and zoom (a "Ken Burns" move) inside a 4:3
window, rendered at 640x480. The same seed gives the same clip. With --out, the
ground truth is written beside the video as `<out>.labels.json`: one class name
per frame, the folder name of the photo it was made from.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from shared_paths import VALIDATION

ROOT = Path(__file__).resolve().parent.parent
SIZE = (640, 480)
# The most a photo is zoomed in (1.25 = the window shows 80% of the photo's width).
MAX_ZOOM = 1.25
# Pans keep within this share of the room the window has to move, so the cat stays in view.
PAN_SHARE = 0.5


def photos(root: Path, nth: int | None) -> list[tuple[Path, str]]:
    """(photo, class) pairs, sorted: the `nth` photo of each class, or all of them when None."""
    pairs = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(f for f in folder.iterdir() if f.suffix.lower() in {".jpg", ".jpeg", ".png"})
        pairs += [(f, folder.name) for f in (files if nth is None else files[nth:nth + 1])]
    return pairs


def shuffled(pairs: list, seed: int) -> list:
    return [pairs[i] for i in np.random.default_rng(seed).permutation(len(pairs))]


def ken_burns(image: np.ndarray, frames: int, rng: np.random.Generator, size=SIZE) -> list[np.ndarray]:
    """`frames` views of `image` moving smoothly from one random 4:3 window to another."""
    h, w = image.shape[:2]
    out_w, out_h = size
    base_w = min(w, h * out_w / out_h)  # the largest 4:3 window
    zooms = rng.uniform(1.0, MAX_ZOOM, 2)
    if rng.random() < 0.5:
        zooms = zooms[::-1]
    shifts = rng.uniform(-1, 1, (2, 2)) * PAN_SHARE
    views = []
    for i in range(frames):
        t = (1 - np.cos(np.pi * i / max(frames - 1, 1))) / 2  # ease in and out
        zoom = zooms[0] + (zooms[1] - zooms[0]) * t
        ww = base_w / zoom
        wh = ww * out_h / out_w
        sx, sy = shifts[0] + (shifts[1] - shifts[0]) * t
        cx = w / 2 + sx * (w - ww) / 2
        cy = h / 2 + sy * (h - wh) / 2
        s = out_w / ww
        m = np.float32([[s, 0, -(cx - ww / 2) * s], [0, s, -(cy - wh / 2) * s]])
        views.append(cv2.warpAffine(image, m, size, flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REFLECT))
    return views


def make_clip(pairs: list[tuple[Path, str]], out: Path, seconds: float, fps: float = 30.0,
              seed: int = 0) -> list[str]:
    """Write the clip to `out` and return the class of each frame."""
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, SIZE)
    if not writer.isOpened():
        raise SystemExit(f"cannot write {out}")
    labels = []
    try:
        for i, (path, label) in enumerate(pairs):
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                print(f"skipping {path}: not a readable image", file=sys.stderr)
                continue
            for view in ken_burns(image, int(round(seconds * fps)), np.random.default_rng(seed + i)):
                writer.write(view)
                labels.append(label)
    finally:
        writer.release()
    return labels


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", type=Path, default=VALIDATION, help="ROOT/<class>/*.jpg (default: shared Validation)")
    p.add_argument("--out", type=Path, help="video to write; also writes <out>.labels.json "
                   "(default: assets/demo.mp4, no labels)")
    p.add_argument("--all", action="store_true", help="every photo (default: one of each class)")
    # The 7th photo of each shared Validation class shows the cat large and near the centre.
    p.add_argument("--nth", type=int, default=6, help="which photo of each class, from 0 (default: 6)")
    p.add_argument("--seconds", type=float, default=2.5, help="seconds per photo")
    # 15 FPS keeps the bundled clip small: OpenCV's mp4v encoder spends a fixed ~14 kB per frame.
    p.add_argument("--fps", type=float, default=15.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shuffle", action="store_true", help="photos in a seeded random order, so the "
                   "cat changes often (by default they come class by class)")
    args = p.parse_args(argv)
    pairs = photos(args.photos, None if args.all else args.nth)
    if args.shuffle:
        pairs = shuffled(pairs, args.seed)
    out = args.out or ROOT / "assets" / "demo.mp4"
    labels = make_clip(pairs, out, args.seconds, args.fps, args.seed)
    if args.out:
        Path(f"{out}.labels.json").write_text(json.dumps(labels) + "\n")
    print(f"{out}: {len(labels)} frames from {len(pairs)} photos, {out.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
