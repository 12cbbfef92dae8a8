"""What a run prints to the terminal besides errors: the start line, a progress bar, quiet mode.

The start line and the closing summary go to stdout (a script may read them); the progress bar
goes to stderr, and only when stderr is a terminal, so logs and pipes never fill with bars.
"""
from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TextIO

from .sources import Frame, Source


def start_line(model_path, classes, backend: str, source: Source, crop: str) -> str:
    """One line saying what this run uses: model, classes, backend, source, size, fps, crop."""
    w, h = source.size
    rate = "live" if source.live else f"{source.fps:g} fps"
    return (f"knyang-cam: model {model_path} ({len(classes)} classes: {', '.join(classes)}), "
            f"backend {backend}; source {source.name} {w}x{h} {rate}; crop {crop}")


class WithProgress(Source):
    """`source` unchanged, with a progress bar (frames, rate, ETA) on `stream` while it is read."""

    def __init__(self, source: Source, stream: TextIO, total: int | None):
        self._source, self._stream, self._total = source, stream, total
        self.name, self.fps, self.size, self.live = source.name, source.fps, source.size, source.live
        self._bar = None

    def __iter__(self) -> Iterator[Frame]:
        from tqdm import tqdm

        self._bar = tqdm(total=self._total, file=self._stream, unit="frame", dynamic_ncols=True,
                         leave=False, mininterval=0.5)
        for frame in self._source:
            yield frame
            self._bar.update(1)

    def close(self) -> None:
        """Close the progress bar, then the wrapped source."""
        if self._bar is not None:
            self._bar.close()
        self._source.close()


def with_progress(source: Source, max_frames: int | None = None, stream: TextIO | None = None) -> Source:
    """`source` with a progress bar when it is a file (or photos) and `stream` (default: sys.stderr now) is a
    terminal."""
    stream = stream or sys.stderr
    if source.live or not _is_terminal(stream):
        return source
    total = source.length
    if max_frames:
        total = min(total, max_frames) if total else max_frames
    return WithProgress(source, stream, total)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


