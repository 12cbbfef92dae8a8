"""Where processed frames go: an annotated video file and the JSONL prediction log.

Both are written under a temporary name beside their target (knyang_cam.paths) and
renamed into place when closed, so an earlier file of that name survives any failure,
SIGKILL included. Both are context managers: an exit by a signal (KeyboardInterrupt) or
a normal end keeps what was written, a video finalised first so it plays; an exit by an
error discards it.
"""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from . import opencv_log
from .atomic import temp_beside
from .errors import OutputError, UserError
from .paths import descriptor, is_stream, make_folder, remove_made, sweep_temp
from .results import Prediction
from .sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES

MIN_VIDEO_SIDE = 2  # OpenCV's mp4v writer refuses 1-pixel frames
MAX_VIDEO_SIDE = 8191  # MPEG-4 part 2 codes a side in 13 bits: a wider or taller frame's writer does not open
# OpenCV hands FFmpeg the frame rate as n / 10^k, to 0.001, and MPEG-4 refuses n over 65535: outside these
# (a time-lapse at one frame in 1000 s, a file whose rate is its time base, 90000) the writer does not open.
MIN_WRITER_FPS, MAX_WRITER_FPS = 0.002, 65535.0


def _plays(path: Path) -> bool:
    with opencv_log.silent():
        cap = cv2.VideoCapture(str(path))
        try:
            return cap.isOpened() and cap.read()[0]
        finally:
            cap.release()


def _keep(exc_type) -> bool:
    return exc_type is None or issubclass(exc_type, KeyboardInterrupt)


class _Pending:
    """A file written at a temporary name beside `path`, renamed over `path` by finish(keep=True)."""

    def __init__(self, path: Path, flag: str):
        self.path, self.flag = path, flag
        self.made = make_folder(flag, path.parent, path)
        sweep_temp(path)
        try:
            self.tmp = temp_beside(path)
        except OSError as e:
            raise UserError(f"cannot write {flag} {path}: {e.strerror or e}") from None

    def finish(self, keep: bool) -> None:
        if self.tmp is None:
            return
        tmp, self.tmp = self.tmp, None
        if not keep:
            tmp.unlink(missing_ok=True)
            remove_made(self.path.parent, self.made)
            return
        try:
            os.replace(tmp, self.path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise OutputError(f"cannot write {self.flag} {self.path}: {e.strerror or e}") from None


class VideoSink:
    """An mp4 (mp4v) writer at the source's frame rate and size.

    Frames of another size (a folder of photos) are letterboxed into the first
    frame's size, because VideoWriter silently drops frames that do not match.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]):
        self.path = Path(path)
        self.size = size
        self.frames = 0
        if min(size) < MIN_VIDEO_SIDE:
            raise UserError(f"the frames are {size[0]}x{size[1]} pixels, too small to write as a video "
                            f"(at least {MIN_VIDEO_SIDE}x{MIN_VIDEO_SIDE}): leave out --output")
        if max(size) > MAX_VIDEO_SIDE:
            raise UserError(f"the frames are {size[0]}x{size[1]} pixels, too large to write as a video (at most "
                            f"{MAX_VIDEO_SIDE} pixels a side): leave out --output")
        self._file = _Pending(self.path, "--output")
        rate = writer_fps(fps)
        if not MIN_WRITER_FPS <= fps <= MAX_WRITER_FPS:
            print(f"warning: --output {self.path}: the video writer takes {MIN_WRITER_FPS:g} to {MAX_WRITER_FPS:g} "
                  f"frames per second, not the source's {fps:g}: written at {rate:g}", file=sys.stderr)
        with opencv_log.silent():  # OpenCV's own failure text is several lines
            self._writer = cv2.VideoWriter(str(self._file.tmp), cv2.VideoWriter_fourcc(*"mp4v"), rate, size)
        if not self._writer.isOpened():
            self._file.finish(keep=False)
            raise UserError(f"cannot write output video {self.path}: OpenCV cannot open a "
                            f"{self.path.suffix} writer for {size[0]}x{size[1]} frames")

    def write(self, frame: np.ndarray) -> None:
        """Append one BGR frame; a frame of another size is letterboxed to the video's."""
        if (frame.shape[1], frame.shape[0]) != self.size:
            frame = letterbox(frame, self.size)
        with opencv_log.silent():  # a failed write (disk full) is found when the video is finalised
            self._writer.write(frame)
        self.frames += 1

    def close(self, keep: bool = True) -> None:
        """Finalise the video (so it plays), then move it into place; `keep=False`, or no frame, discards it.

        VideoWriter reports no failed write, so the finished file is opened again first: a video
        that does not play (disk full) is an OutputError and never replaces an earlier file.
        """
        with opencv_log.silent():
            self._writer.release()
        keep = keep and self.frames > 0  # a video of no frame does not play: the earlier file stays
        if keep and self._file.tmp is not None and not _plays(self._file.tmp):
            self._file.finish(keep=False)
            raise OutputError(f"cannot write --output {self.path}: the video could not be finished "
                              f"(is the disk full?)")
        self._file.finish(keep)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        self.close(_keep(exc_type))


def writer_fps(fps: float) -> float:
    """The frame rate nearest `fps` that the mp4v writer opens with (MIN_WRITER_FPS, MAX_WRITER_FPS): the fewer
    decimals the faster it is, as n / 10^k must stay within 65535."""
    fps = min(max(fps, MIN_WRITER_FPS), MAX_WRITER_FPS)
    for digits in (3, 2, 1):
        if round(fps * 10 ** digits) <= MAX_WRITER_FPS:
            return round(fps, digits)
    return float(round(fps))


def letterbox(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`frame` scaled to fit `size` (width, height), aspect kept, centred on black."""
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


class LogReaderGone(Exception):
    """The reader of a piped --log (`--log /dev/stdout | head`) closed it: the run ends there, like the end of its
    input, and the other outputs are kept; a full disk is an OutputError instead, which discards them."""


class JsonlLog:
    """The prediction log, one JSON object per line.

    Unbuffered, and each line goes out in one write() call, so the file being written
    always holds whole lines. A failed write (disk full) is an OutputError: exit status 1.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
            # `--log clip.mp4`, meant as --output, replaced the user's video of that name with a few lines of JSON.
            raise UserError(f"--log {self.path} is named as a video or picture ({self.path.suffix}): the log is "
                            f"JSON lines, e.g. run.jsonl (--output writes the video)")
        # A device or pipe (/dev/stdout, a FIFO) is a stream to write to, not a file to replace.
        self._pending = None if is_stream(self.path) else _Pending(self.path, "--log")
        self.lines = 0
        try:
            self._file = self._open()
        except OSError as e:
            raise UserError(f"cannot write --log {self.path}: {e.strerror or e}") from None

    def _open(self):
        if self._pending:
            return open(self._pending.tmp, "wb", buffering=0)
        fd = descriptor(self.path)
        # The descriptor itself, not the file it points at opened anew: the two would each keep their own
        # place in a redirected stdout and write over each other's lines.
        return open(os.dup(fd), "wb", buffering=0) if fd is not None else open(self.path, "wb", buffering=0)

    def write(self, record: dict) -> None:
        """Append `record` as one JSON line in one write; LogReaderGone when the pipe's reader left, OutputError
        when the write fails otherwise."""
        try:
            self._file.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
        except BrokenPipeError:
            raise LogReaderGone(f"the reader of --log {self.path} went away") from None
        except OSError as e:
            raise OutputError(f"cannot write --log {self.path}: {e.strerror or e}") from None
        self.lines += 1

    def close(self, keep: bool = True) -> None:
        """Close the file and move it into place; `keep=False`, or no line, discards it (the earlier file stays)."""
        try:
            self._file.close()
        except OSError as e:
            raise OutputError(f"cannot write --log {self.path}: {e.strerror or e}") from None
        if self._pending:
            self._pending.finish(keep and self.lines > 0)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        self.close(_keep(exc_type))
