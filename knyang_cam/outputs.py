"""Where a run's frames go: the window, the annotated video, the log and the report, opened and closed together."""
from __future__ import annotations

import time
from contextlib import ExitStack

from . import overlay, paths
from .errors import OutputError
from .results import Prediction
from .sinks import JsonlLog, VideoSink, log_record
from .sources import Frame, Source
from .window import Window


class Outputs:
    """The window, annotated video, log and report of one run, opened on `stack` and closed with it.

    The files go through temporary names (sinks, paths): a run that ends normally, by a signal or
    by a lost camera moves them into place; a run that fails, or ends before its first frame, leaves
    the earlier files as they were.
    """

    def __init__(self, stack: ExitStack, source: Source, classes, window: bool, planned: paths.AppPaths,
                 record_hud: bool = False):
        self.classes = classes
        self.screen = Window() if window else None
        if self.screen:
            stack.callback(self.screen.close)
        # A recording with the HUD is the window's picture, its strip of bars beside the frame included.
        size = overlay.shown_size(source.size) if record_hud else source.size
        self.video = stack.enter_context(VideoSink(planned.output, source.fps, size)) if planned.output else None
        self.log = stack.enter_context(JsonlLog(planned.log)) if planned.log else None
        self.report = None
        if planned.report:
            from .video_report import VideoReport

            # An unwritable place is found before the first frame.
            self.report_made = paths.make_folder("--report", planned.report)
            for name in paths.REPORT_FILES:
                paths.sweep_temp(planned.report / name)
            self.report = VideoReport(planned.report, classes, source.fps)
            stack.push(self._close_report)
        self.draws = bool(self.screen or self.video)

    def _close_report(self, exc_type, *exc) -> bool:
        if self.report.frames and (exc_type is None or issubclass(exc_type, KeyboardInterrupt)):
            try:  # marked before its files are written: a run cut short while writing leaves the folder ours
                self.report.close(before_writing=lambda: paths.mark_report(self.report.out_dir))
            except OSError as e:
                raise OutputError(f"cannot write --report {self.report.out_dir}: {e.strerror or e}") from None
        else:
            paths.remove_made(self.report.out_dir, self.report_made)
        return False

    def record(self, frame: Frame, predictions: list[Prediction], shown, timing_ms: dict) -> float:
        """Write one processed frame everywhere; returns the milliseconds it took."""
        t0 = time.perf_counter()
        if self.log:
            self.log.write(log_record(frame.index, frame.time_s, predictions, self.classes, timing_ms))
        if self.video:
            self.video.write(shown[1])
        if self.report:
            self.report.add(frame.index, frame.time_s, frame.image, predictions)
        return (time.perf_counter() - t0) * 1000

    def set_classes(self, classes) -> None:
        """Name a swapped model's `classes` in the log and the report from the next frame on."""
        self.classes = classes
        if self.report:
            self.report.add_classes(classes)

    def show(self, shown) -> None:
        """Show the window's picture of `shown` (the pair `draw` returns); nothing without a window."""
        if self.screen:
            self.screen.show(shown[0])

    def window_closed(self) -> bool:
        """True once the user closed the window; always False without one."""
        return bool(self.screen and self.screen.closed())
