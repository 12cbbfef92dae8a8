"""Real video files for the app tests: written with cv2.VideoWriter, read back with cv2.VideoCapture."""
from __future__ import annotations

import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image


def noise_frame(seed: int, width: int = 320, height: int = 240) -> np.ndarray:
    """A textured frame, smooth enough to survive mp4v, unique enough to locate by template matching."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def write_clip(path: Path, frames, fps: float = 20.0) -> Path:
    frames = list(frames)
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def read_frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def brightness_clip(path: Path, n: int = 24, fps: float = 20.0, size=(320, 240)) -> Path:
    """Frame i is a flat grey of level 10 * i (capped), so frame order is visible in the pixels."""
    w, h = size
    return write_clip(path, [np.full((h, w, 3), min(250, 10 * i), np.uint8) for i in range(n)], fps)


# Each class is a distinct colour + stripe pattern, so a small head separates them even on random features.
PATTERNS = {"Alpha": (220, 40, 40), "Beta": (40, 200, 60), "Gamma": (50, 70, 230), "Delta": (230, 220, 40)}


def write_class(root: Path, name: str, n: int, start: int = 0) -> list[Path]:
    """`n` PNG photos of class `name` (one of PATTERNS) in `root/name/`."""
    rng = np.random.default_rng(zlib.crc32(name.encode()) + start)
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + n):
        img = np.zeros((72, 72, 3), np.uint8) + np.array(PATTERNS[name], np.uint8)
        stripe = list(PATTERNS).index(name) * 12 + 6
        img[:, stripe:stripe + 8] = 255 - img[:, stripe:stripe + 8]
        img = np.clip(img.astype(int) + rng.integers(-25, 25, img.shape), 0, 255).astype(np.uint8)
        path = folder / f"{name.lower()}_{i:03d}.png"
        Image.fromarray(img).save(path)
        paths.append(path)
    return paths
