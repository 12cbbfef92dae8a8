"""The run's totals: frames, time per stage, seconds each cat was on screen; the closing summary."""
from __future__ import annotations

import time
from collections import defaultdict

from .results import UNKNOWN, Prediction
from .sources import Frame

STAGES = ("capture", "detect", "infer", "draw")


class Stats:
    """Totals for the closing summary."""

    def __init__(self):
        self.frames = 0
        self.stage_ms = defaultdict(float)
        self.on_screen = defaultdict(float)
        self._last: tuple[float, set, float] | None = None
        self.started = time.perf_counter()

    def add(self, frame: Frame, predictions: list[Prediction], timing_ms: dict, fps: float) -> None:
        """Count one processed frame: its stage times (ms) and the labels on screen until the next frame."""
        if self.frames == 0:  # the run's time starts when its first frame was asked for, not when it was done
            self.started = time.perf_counter() - sum(timing_ms.values()) / 1000
        self.frames += 1
        for stage, ms in timing_ms.items():
            self.stage_ms[stage] += ms
        self._close_interval(frame.time_s)
        self._last = (frame.time_s, {p.label for p in predictions}, 1.0 / fps)

    def _close_interval(self, now: float | None) -> None:
        """A frame's labels were on screen until the next frame (or one frame period, for the last)."""
        if self._last is None:
            return
        start, labels, period = self._last
        for label in labels:
            self.on_screen[label] += (now - start) if now is not None else period

    def summary(self, ended: str, classes) -> str:
        """The closing lines: frames and FPS, how the run `ended`, mean ms per stage, seconds each cat was seen."""
        self._close_interval(None)
        self._last = None
        wall = time.perf_counter() - self.started
        n = max(self.frames, 1)
        stages = ", ".join(f"{s} {self.stage_ms[s] / n:.2f}" for s in (*STAGES, "output"))
        # Cats never seen are left out: a list of "0.0 s" hides the ones that were.
        shown = ", ".join(f"{c} {self.on_screen[c]:.1f} s" for c in (*classes, UNKNOWN)
                          if self.on_screen[c] > 0) or "no cat"
        frames = f"{self.frames} frame{'' if self.frames == 1 else 's'}"
        return (f"knyang-cam: {frames} in {wall:.2f} s ({self.frames / max(wall, 1e-9):.1f} FPS); "
                f"{ended}\nmean ms per frame: {stages}\non screen: {shown}")
