"""What every frame source is: a context manager iterated for `Frame`s, with `fps` and `size` known once open."""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

FALLBACK_FPS = 30.0
# FFmpeg prints its own diagnostics ("moov atom not found") beside ours; only fatal ones, unless the
# user asks for more. Read by OpenCV when it first uses FFmpeg, so setting it here is in time.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")


class SourceLost(Exception):
    """A live source stopped delivering frames and could not be reopened."""


@dataclass(frozen=True)
class Frame:
    """One frame: index from 0, seconds from the start of the source, BGR image, reconnect status ('' normally)."""

    index: int
    time_s: float
    image: np.ndarray  # BGR uint8
    # Non-empty while a camera is reconnecting: `image` is then the last good frame,
    # re-sent only so the window can say so; it is not a new frame to process.
    status: str = ""
    # True while a live source waits for its next frame (none came within WAIT_STEP_S): `image` is the
    # last good frame, handed out so the app keeps its window, keys and Ctrl-C through a stall that
    # has not yet been taken for a lost camera; it is not a new frame to process either.
    waiting: bool = False


class Source:
    """Base of all sources: context manager, iterable of Frames, `fps`, `size`, `live`."""

    name = ""
    fps = FALLBACK_FPS
    size = (0, 0)  # width, height of the first frame
    # Live sources pace themselves and drop stale frames; files can be replayed at their own rate.
    live = False
    # Photos: in a window the last one stays up until a key ends the run, as in a picture viewer.
    still = False
    length: int | None = None  # frames in a file or folder, when known (for a progress bar)

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the source holds (a file, a camera, a reader thread); the base holds nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def fps_or_fallback(fps: float) -> float:
    return float(fps) if fps and np.isfinite(fps) and fps > 0 else FALLBACK_FPS
