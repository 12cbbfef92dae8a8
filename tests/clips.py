"""Real video files for the app tests: written with cv2.VideoWriter, read back with cv2.VideoCapture."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


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
