"""The app under what a home webcam really gives: night infrared, backlight, rotation, blur, low bitrate, ...

    python bench/conditions.py [--model models/knyang] [--seconds 1] [--only plain,night-ir] [--keep DIR]

One scene per photo of ../shared/data/knyang/Validation (never trained on: a model that
learnt them is measured by its twin without them, bench/scene_model.py): the photo cut out as in
bench/find_cats.py (a square or an ellipse, 40-55% of the frame height), pasted on a background
without a cat, centred across and anywhere down the frame, with a slow pan and zoom, --seconds
long at 30 FPS, 640x480. Every condition below renders the same scenes (the same photo,
background, place and move, seeded per scene) with one thing changed, so each is read against
"plain":
- the picture: night-ir (grey, low contrast, noisy, soft), overexposed (gain, clipped
  highlights), backlit (the cat dark before a blown-out background, with glare), dim-noisy (little
  light, strong gain: shot and read noise, colour noise), upside-down (the frame rotated 180),
  fisheye (barrel distortion by cv2.remap, black corners), blur-10px and blur-25px (motion blur:
  a streak that long at a random angle per scene: a walking cat at 1/30 s, a leap), bitrate-250k
  and bitrate-64k (the plain clip re-encoded by ffmpeg's x264 at that many bits/s; a cheap
  camera's stream, and far below it);
- the scene: sideways (the camera on its side: cat and background rotated 90 degrees), at-edge
  (half the cat out of the frame, left or right), behind-box (a box over 30-50% of the cat's
  square, from a side or below), small (15-20% of the height), face-fill (the cat fills more than
  the frame: a window 0.6x its cut-out's side about its face, OpenCV's cat-face cascade, or the
  middle where none is found);
- the source: 320x240 and 1920x1080 (the plain frames, resized, 1080p widened by reflection),
  5 fps and 60 fps (the same moves in as many seconds, so more or fewer frames).

Printed for each condition and crop mode (centre; detect with the cat finder), per frame, the
label of the frame's regions read in this order: right (some region names the cat shown), wrong
(else some region names another of the five cats), unknown (else some region reads "unknown"),
no region (the finder saw no cat; never in centre mode); then "gate hid": of the unknown frames,
the share whose probabilities still put the right cat first (the unknown gate withheld a right
name, rather than the classifier leaning to another cat); then "right, settled": the right share
from each scene's 10th frame at 30 fps (a third of a second) on, past the smoother's start; and
the whole loop's frames/s (headless, log written, nothing drawn). No targets: a map of where the
app is weak.
"""
from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from app_speed import settings  # noqa: E402
from find_cats import SIZE, VALIDATION, backgrounds, cut_out, layout, pan_zoom, place, validation_photos  # noqa: E402
from scene_model import for_scenes  # noqa: E402

from knyang_cam import app, config  # noqa: E402
from knyang_cam.sources import VideoFile  # noqa: E402

FPS = 30.0
MODES = {"centre": "center", "detect": "detect"}
SETTLED_S = 9 / FPS  # from each scene's 10th frame at 30 FPS


# ---- pictures: one frame in, one frame out --------------------------------------------------

def night_ir(frame, rng):
    """An infrared night picture: grey, its range squeezed, soft, with sensor noise."""
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)
    grey = cv2.GaussianBlur(grey * 0.45 + 60, (3, 3), 0) + rng.normal(0, 9, grey.shape)
    return cv2.cvtColor(np.clip(grey, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def overexposed(frame, rng):
    """Twice the exposure and a veil of stray light: everything above mid-grey burns out."""
    return np.clip(frame.astype(np.float32) * 2.0 + 30, 0, 255).astype(np.uint8)


def dim_noisy(frame, rng):
    """A dark room: 15% of the light, shot and read noise per channel, then the camera's 6x gain."""
    x = frame.astype(np.float32) / 255 * 0.15
    x = x + rng.normal(0, 1, x.shape) * np.sqrt(x * 0.002) + rng.normal(0, 0.01, x.shape)
    return np.clip(x * 6 * 255, 0, 255).astype(np.uint8)


def upside_down(frame, rng):
    return cv2.rotate(frame, cv2.ROTATE_180)


def fisheye_maps(size, k=0.35):
    """remap maps of a barrel distortion: the centre at scale 1, the edges squeezed, corners black."""
    w, h = size
    u, v = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    half = np.hypot(w, h) / 2
    dx, dy = (u - w / 2) / half, (v - h / 2) / half
    scale = 1 + k * (dx * dx + dy * dy)
    return (dx * scale * half + w / 2).astype(np.float32), (dy * scale * half + h / 2).astype(np.float32)


FISHEYE = fisheye_maps(SIZE)


def fisheye(frame, rng):
    return cv2.remap(frame, *FISHEYE, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def streak(length: int, angle: float) -> np.ndarray:
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2] = 1
    turn = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), angle, 1.0)
    kernel = cv2.warpAffine(kernel, turn, (length, length))
    return kernel / kernel.sum()


def small_source(frame, rng):
    return cv2.resize(frame, (320, 240), interpolation=cv2.INTER_AREA)


def full_hd(frame, rng):
    """1920x1080: the 4:3 picture at 1080 lines, widened to 16:9 by reflecting its sides (no cat there)."""
    big = cv2.resize(frame, (1440, 1080), interpolation=cv2.INTER_CUBIC)
    return cv2.copyMakeBorder(big, 0, 0, 240, 240, cv2.BORDER_REFLECT)


# ---- scenes ---------------------------------------------------------------------------------

CAT_FACE = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalcatface_extended.xml")


def face_centre(square: np.ndarray) -> tuple[float, float]:
    """The largest cat face the cascade finds in the cut-out, else its middle (the photos are framed on the cat)."""
    s = 640 / square.shape[0]
    grey = cv2.cvtColor(cv2.resize(square, None, fx=s, fy=s), cv2.COLOR_BGR2GRAY)
    faces = CAT_FACE.detectMultiScale(grey, 1.1, 3, minSize=(40, 40))
    if len(faces) == 0:
        return square.shape[1] / 2, square.shape[0] / 2
    x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
    return (x + w / 2) / s, (y + h / 2) / s


def filled(square: np.ndarray) -> np.ndarray:
    """A 640x480 view of the cut-out 0.6 of its side high, about the cat's face."""
    w, h = SIZE
    cx, cy = face_centre(square)
    z = h / (0.6 * square.shape[0])
    m = np.float32([[z, 0, w / 2 - cx * z], [0, z, h / 2 - cy * z]])
    return cv2.warpAffine(square, m, SIZE, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)


def paste_clipped(canvas, thing, mask, box) -> None:
    """`place`, for a box that may run past the canvas's left or right edge."""
    x, y, side, _ = box
    wide = cv2.copyMakeBorder(canvas, 0, 0, side, side, cv2.BORDER_REFLECT)
    place(wide, thing, mask, (x + side, y, side, side))
    canvas[:] = wide[:, side:side + canvas.shape[1]]


def cardboard(canvas, box, rng) -> None:
    """A box in front of the cat over 30-50% of its square: from the left, the right or below."""
    x, y, side, _ = box
    cover = int(side * rng.uniform(0.3, 0.5))
    where = rng.integers(3)
    x0, y0, x1, y1 = [(x, y, x + cover, y + side), (x + side - cover, y, x + side, y + side),
                      (x, y + side - cover, x + side, y + side)][where]
    colour = tuple(float(c) for c in rng.uniform([40, 90, 130], [70, 130, 180]))  # brown, BGR
    cv2.rectangle(canvas, (x0, y0), (x1, y1), colour, -1)
    cv2.rectangle(canvas, (x0, y0), (x1, y1), tuple(c * 0.6 for c in colour), 3)


def scene(photo, bgs, seed: int, k: int, frames: int, variant: str) -> list[np.ndarray]:
    """The k-th scene's frames: the same draws for every variant, so only the variant differs."""
    rng = np.random.default_rng([seed, k])
    extra = np.random.default_rng([seed, k, 1])  # the variant's own draws
    canvas = bgs[rng.integers(len(bgs))].copy()
    frac = rng.uniform(0.40, 0.55)
    if variant == "small":
        frac = extra.uniform(0.15, 0.20)
    if variant == "sideways":
        turn = cv2.ROTATE_90_CLOCKWISE if extra.random() < 0.5 else cv2.ROTATE_90_COUNTERCLOCKWISE
        photo = cv2.rotate(photo, turn)
        canvas = cv2.resize(cv2.rotate(canvas, turn), SIZE, interpolation=cv2.INTER_AREA)
    if variant == "backlit":
        canvas = np.clip(canvas.astype(np.float32) * 1.6 + 70, 0, 255).astype(np.uint8)
        photo = (photo.astype(np.float32) * 0.35).astype(np.uint8)
    thing, mask = cut_out(photo, rng)
    box = layout(rng, [frac], off_centre=False)[0]
    if variant == "face-fill":
        canvas = filled(thing)
    elif variant == "at-edge":
        x, y, side, _ = box
        paste_clipped(canvas, thing, mask, (-side // 2 if extra.random() < 0.5 else SIZE[0] - side // 2, y, side, side))
    else:
        place(canvas, thing, mask, box)
    if variant == "behind-box":
        cardboard(canvas, box, extra)
    if variant == "backlit":
        glare = cv2.GaussianBlur(canvas, (0, 0), 25).astype(np.float32)
        canvas = np.clip(canvas * 0.8 + glare * 0.35, 0, 255).astype(np.uint8)
    return pan_zoom(canvas, frames, rng)[0]


# ---- conditions -----------------------------------------------------------------------------

# name: (scene variant, picture function or the length (px) of a motion blur streak or None, frames per second,
#        ffmpeg bitrate or None)
CONDITIONS = {
    "plain": ("plain", None, FPS, None),
    "night-ir": ("plain", night_ir, FPS, None),
    "overexposed": ("plain", overexposed, FPS, None),
    "backlit": ("backlit", None, FPS, None),
    "dim-noisy": ("plain", dim_noisy, FPS, None),
    "upside-down": ("plain", upside_down, FPS, None),
    "sideways": ("sideways", None, FPS, None),
    "fisheye": ("plain", fisheye, FPS, None),
    "at-edge": ("at-edge", None, FPS, None),
    "behind-box": ("behind-box", None, FPS, None),
    "small": ("small", None, FPS, None),
    "face-fill": ("face-fill", None, FPS, None),
    "blur-10px": ("plain", 10, FPS, None),
    "blur-25px": ("plain", 25, FPS, None),
    "bitrate-250k": ("plain", None, FPS, "250k"),
    "bitrate-64k": ("plain", None, FPS, "64k"),
    "320x240": ("plain", small_source, FPS, None),
    "1920x1080": ("plain", full_hd, FPS, None),
    "5fps": ("plain", None, 5.0, None),
    "60fps": ("plain", None, 60.0, None),
}


def render(condition: str, plan, bgs, clip: Path, seconds: float, seed: int) -> tuple[list[str], list[float]]:
    """Write the condition's clip; return the cat of every frame and the time into its scene."""
    variant, picture, fps, bitrate = CONDITIONS[condition]
    frames = max(1, round(seconds * fps))
    noise = np.random.default_rng([seed, 2])
    writer, truth, since = None, [], []
    target = clip.with_suffix(".raw.mp4") if bitrate else clip
    try:
        for k, (name, photo) in enumerate(plan):
            kernel = (streak(picture, np.random.default_rng([seed, k, 3]).uniform(0, 180))
                      if isinstance(picture, int) else None)
            for i, view in enumerate(scene(photo, bgs, seed, k, frames, variant)):
                if kernel is not None:
                    view = cv2.filter2D(view, -1, kernel)
                elif picture is not None:
                    view = picture(view, noise)
                if writer is None:
                    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                             (view.shape[1], view.shape[0]))
                writer.write(view)
                truth.append(name)
                since.append(i / fps)
    finally:
        if writer is not None:
            writer.release()
    if bitrate:
        # One thread: x264's threaded rate control gives another clip on every run.
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(target), "-c:v", "libx264", "-preset", "veryfast",
                        "-threads", "1", "-b:v", bitrate, "-maxrate", bitrate, "-bufsize", bitrate, str(clip)],
                       check=True)
        target.unlink()
    return truth, since


# ---- scoring --------------------------------------------------------------------------------

def outcome(record: dict, cat: str) -> str:
    labels = [r["label"] for r in record["regions"]]
    if cat in labels:
        return "right"
    if any(label != "unknown" for label in labels):
        return "wrong"
    return "unknown" if labels else "none"


def score(records: list[dict], truth: list[str], since: list[float]) -> dict:
    counts = dict.fromkeys(("right", "wrong", "unknown", "none"), 0)
    leaned_right = settled = settled_right = 0
    for rec in records:
        cat = truth[rec["frame"]]
        what = outcome(rec, cat)
        counts[what] += 1
        if what == "unknown":
            largest = max(rec["regions"], key=lambda r: r["box"][2] * r["box"][3])
            leaned_right += max(largest["probs"], key=largest["probs"].get) == cat
        if since[rec["frame"]] >= SETTLED_S - 1e-9:
            settled += 1
            settled_right += what == "right"
    n = len(records)
    return {**{k: v / n for k, v in counts.items()},
            "gate_hid": leaned_right / counts["unknown"] if counts["unknown"] else float("nan"),
            "settled": settled_right / settled if settled else float("nan"), "frames": n}


def app_run(cfg, clip: Path, info, log: Path) -> tuple[float, list[dict]]:
    """(frames per second of the whole loop, log records) of one headless run."""
    t0 = time.perf_counter()
    status = app.run(cfg, VideoFile(clip), info, log=str(log), out=io.StringIO())
    wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"the app ended with status {status} on {clip.name}")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    return len(records) / wall, records


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="models/knyang")
    p.add_argument("--seconds", type=float, default=1.0, help="seconds per scene (30 frames at 30 FPS)")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--only", default=",".join(CONDITIONS), help="comma-separated, from: " + ", ".join(CONDITIONS))
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated, from: " + ", ".join(MODES))
    p.add_argument("--keep", metavar="DIR", help="keep the clips (<condition>.mp4) and logs in this folder")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a config value for every run, e.g. regions.detect_every=1 (repeatable)")
    args = p.parse_args(argv)
    for wanted, known, what in ((args.only, CONDITIONS, "condition"), (args.modes, MODES, "mode")):
        if unknown := [c for c in wanted.split(",") if c not in known]:
            p.error(f"unknown {what} {unknown[0]!r}; {what}s: " + ", ".join(known))
    if not VALIDATION.is_dir():
        print(f"error: {VALIDATION} not found (the shared Knyang dataset)", file=sys.stderr)
        return 2

    info = for_scenes(args.model)
    photos = validation_photos()
    plan = [(name, photo) for name in sorted(photos) for photo in photos[name]]
    bgs = backgrounds(np.random.default_rng(args.seed))
    print(f"model {info.path}; {len(plan)} scenes of {args.seconds:g} s, one Validation photo each, seed {args.seed}")
    print(f"{'condition':12s} {'mode':7s} {'frames':>6s} {'right':>6s} {'wrong':>6s} {'unknown':>7s} "
          f"{'no region':>9s} {'gate hid':>8s} {'settled':>7s} {'FPS':>6s}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        base = config.override(config.load(), **{"app.dataset_root": str(Path(tmp) / "data"),
                                                 "app.snapshots_dir": str(Path(tmp) / "snaps")})
        base = config.with_values(base, settings(args.set))
        for condition in args.only.split(","):
            clip = work / f"{condition}.mp4"
            truth, since = render(condition, plan, bgs, clip, args.seconds, args.seed)
            for mode in args.modes.split(","):
                cfg = config.override(base, **{"regions.crop": MODES[mode]})
                fps, records = app_run(cfg, clip, info, work / f"{condition}.{mode}.jsonl")
                s = score(records, truth, since)
                print(f"{condition:12s} {mode:7s} {s['frames']:6d} {s['right']:6.3f} {s['wrong']:6.3f} "
                      f"{s['unknown']:7.3f} {s['none']:9.3f} {s['gate_hid']:8.2f} {s['settled']:7.3f} {fps:6.1f}",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
