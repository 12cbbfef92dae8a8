"""Where processed frames go: an annotated video file and the JSONL prediction log.

Both are context managers and are finalised on any exit, so an interrupted run
still leaves a playable video and a log of whole lines.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from .errors import UserError
from .results import Prediction


def _make_parent(path: Path, what: str) -> None:
    """Create the folder of an output file, as users expect from `--output out/demo.mp4`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"cannot write {what} {path}: {path.parent} is a file, not a folder") from None
    except OSError as e:
        raise UserError(f"cannot write {what} {path}: {e.strerror or e}") from None


class VideoSink:
    """An mp4 (mp4v) writer at the source's frame rate and size.

    Frames of another size (a folder of photos) are letterboxed into the first
    frame's size, because VideoWriter silently drops frames that do not match.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]):
        self.path = Path(path)
        self.size = size
        self.frames = 0
        _make_parent(self.path, "output video")
        self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not self._writer.isOpened():
            raise UserError(f"cannot write output video {self.path} (use a writable .mp4 path)")

    def write(self, frame: np.ndarray) -> None:
        if (frame.shape[1], frame.shape[0]) != self.size:
            frame = letterbox(frame, self.size)
        self._writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        self._writer.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def letterbox(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    scale = min(w / frame.shape[1], h / frame.shape[0])
    nw, nh = max(1, round(frame.shape[1] * scale)), max(1, round(frame.shape[0] * scale))
    out = np.zeros((h, w, 3), np.uint8)
    x, y = (w - nw) // 2, (h - nh) // 2
    out[y:y + nh, x:x + nw] = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)
    return out


def log_record(index: int, time_s: float, predictions: Sequence[Prediction], classes: Sequence[str],
               timing_ms: dict) -> dict:
    """One line of the prediction log (docs/contracts.md)."""
    return {"frame": index, "time_s": round(time_s, 4),
            "regions": [p.to_log(classes) for p in predictions],
            "timing_ms": {k: round(v, 3) for k, v in timing_ms.items()}}


class JsonlLog:
    """The prediction log, one JSON object per line.

    Unbuffered, and each line goes out in one write() call, so a run killed at any
    moment leaves only whole lines behind.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        _make_parent(self.path, "log")
        try:
            self._file = open(self.path, "wb", buffering=0)
        except OSError as e:
            raise UserError(f"cannot write log {self.path}: {e.strerror or e}") from None

    def write(self, record: dict) -> None:
        self._file.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))

    def close(self) -> None:
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
