"""The live loop: source -> regions -> one batched classification -> smoothing -> overlay -> outputs.

Keys come from a key provider, a callable like `cv2.waitKey(delay_ms) -> code or -1`,
so tests drive every key without a display.

Exit statuses (README lists them):
0 the source ended, `q`/Esc, the window was closed, or --max-frames was reached;
2 a user error (raised as UserError before the loop starts);
3 the camera stopped delivering frames and reconnecting failed;
128 + signal number when interrupted: 130 for Ctrl-C (SIGINT), 143 for SIGTERM.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections import defaultdict
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, TextIO

import cv2
import numpy as np

from . import model_dir, overlay
from .classify import load_classifier
from .config import Config
from .cuts import CutDetector
from .dataset import Saver
from .errors import UserError
from .model_dir import ModelError, ModelInfo
from .retrain import BackgroundRetrain
from .regions import crops, make_finder
from .results import UNKNOWN, Prediction
from .sinks import JsonlLog, VideoSink, log_record
from .smoothing import Smoother
from .sources import Frame, Source, SourceLost

EXIT_OK, EXIT_CAMERA_LOST = 0, 3  # 2 (user error) comes from UserError.exit_code
WINDOW = "knyang-cam"
KEY_ESC = 27
KEY_ENTER = (10, 13)
KEY_BACKSPACE = (8, 127)
STAGES = ("capture", "detect", "infer", "draw")

KeyProvider = Callable[[int], int]


def scripted(keys: Iterable) -> KeyProvider:
    """A key provider that replays `keys` (characters or codes, -1 = none), then -1 forever."""
    codes = iter([ord(k) if isinstance(k, str) else int(k) for k in keys])

    def provider(delay_ms: int) -> int:
        if delay_ms > 1:
            time.sleep(delay_ms / 1000)
        return next(codes, -1)

    return provider


def no_keys(delay_ms: int) -> int:
    if delay_ms > 1:
        time.sleep(delay_ms / 1000)
    return -1


@dataclass
class Controls:
    """What the keys change."""

    crop_mode: str
    bars: bool
    help: bool = False
    paused: bool = False
    quit: bool = False
    typing: Optional[str] = None  # the new cat's name while `n` collects it
    toast: str = ""
    toast_until: float = 0.0

    def notify(self, message: str, seconds: float) -> None:
        if message:
            self.toast, self.toast_until = message, time.monotonic() + seconds


class Analyzer:
    """One frame in, smoothed predictions out, with the time spent detecting and inferring.

    Every region of a frame (one per cat in detect mode, none when no cat is in view) goes to
    the classifier in one batched call.
    """

    def __init__(self, cfg: Config, classifier, unknown_threshold: float):
        self.cfg, self.classifier = cfg, classifier
        self.finder = make_finder(cfg.regions.crop, cfg.regions, cfg.classifier.threads)
        self.smoother = Smoother.from_config(classifier.classes, cfg.smoothing, unknown_threshold)
        self.cuts = CutDetector(cfg.smoothing.cut_threshold)

    def set_mode(self, mode: str) -> None:
        self.finder = make_finder(mode, self.cfg.regions, self.cfg.classifier.threads)
        self.smoother.reset()

    @property
    def classes(self) -> tuple[str, ...]:
        return self.classifier.classes

    def swap(self, classifier, unknown_threshold: float) -> None:
        self.classifier = classifier
        self.smoother.reset(classifier.classes, unknown_threshold)

    def __call__(self, image: np.ndarray) -> tuple[list[Prediction], float, float]:
        t0 = time.perf_counter()
        if self.cuts(image):
            # A cut: the boxes held or tracked from the last shot are wrong; search this frame afresh.
            self.smoother.reset()
            getattr(self.finder, "reset", lambda: None)()
        regions = self.finder(image)
        t1 = time.perf_counter()
        probs = self.classifier.predict(crops(image, regions, self.classifier.input_size))
        predictions = self.smoother.update(regions, probs)
        return predictions, (t1 - t0) * 1000, (time.perf_counter() - t1) * 1000


class Stats:
    """Totals for the closing summary."""

    def __init__(self):
        self.frames = 0
        self.stage_ms = defaultdict(float)
        self.on_screen = defaultdict(float)
        self._last: Optional[tuple[float, set, float]] = None
        self.started = time.perf_counter()

    def add(self, frame: Frame, predictions: list[Prediction], timing_ms: dict, fps: float) -> None:
        if self.frames == 0:
            self.started = time.perf_counter() - timing_ms["capture"] / 1000
        self.frames += 1
        for stage, ms in timing_ms.items():
            self.stage_ms[stage] += ms
        self._close_interval(frame.time_s)
        self._last = (frame.time_s, {p.label for p in predictions}, 1.0 / fps)

    def _close_interval(self, now: Optional[float]) -> None:
        """A frame's labels were on screen until the next frame (or one frame period, for the last)."""
        if self._last is None:
            return
        start, labels, period = self._last
        for label in labels:
            self.on_screen[label] += (now - start) if now is not None else period

    def summary(self, ended: str, classes) -> str:
        self._close_interval(None)
        self._last = None
        wall = time.perf_counter() - self.started
        n = max(self.frames, 1)
        stages = ", ".join(f"{s} {self.stage_ms[s] / n:.2f}" for s in (*STAGES, "output"))
        shown = ", ".join(f"{c} {self.on_screen[c]:.1f} s" for c in (*classes, UNKNOWN))
        return (f"knyang-cam: {self.frames} frames in {wall:.2f} s ({self.frames / max(wall, 1e-9):.1f} FPS); "
                f"{ended}\nmean ms per frame: {stages}\non screen: {shown}")


class Window:
    def __init__(self):
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise UserError("no display to open a window on (DISPLAY is not set); use --headless")
        # GUI_NORMAL: just the picture, without the Qt toolbar of zoom and save buttons.
        cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
        self.shown = False

    def show(self, image: np.ndarray) -> None:
        cv2.imshow(WINDOW, image)
        self.shown = True

    def closed(self) -> bool:
        """The user closed the window with the title bar's button."""
        return self.shown and cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1

    def close(self) -> None:
        cv2.destroyWindow(WINDOW)


@contextmanager
def caught_signals():
    """Turn SIGINT/SIGTERM into a flag the loop checks between frames, for a clean end."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def on_signal(signum, _frame):
        if caught:  # a second Ctrl-C: the user will not wait for the clean end; unwind now
            raise KeyboardInterrupt
        caught.append(signum)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield caught
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


class Teacher:
    """Labelled crops -> background retrain -> a new model swapped in between two frames."""

    def __init__(self, cfg: Config, model: ModelInfo):
        self.cfg, self.model = cfg, model
        r = cfg.retrain
        self.job = BackgroundRetrain(cfg.app.dataset_root, r.models_dir, r.max_accuracy_drop, cfg.train)
        self._labelled_at_start = 0

    def start(self, saver: Saver) -> str:
        if not self.job.start(self.model.path):
            return "a retrain is already running"
        self._labelled_at_start = saver.labelled
        return "retraining in the background"

    def auto_start(self, saver: Saver) -> str:
        due = self.cfg.retrain.auto_after and saver.labelled - self._labelled_at_start >= self.cfg.retrain.auto_after
        return self.start(saver) if due and not self.job.running else ""

    def swapped(self) -> Optional[tuple[ModelInfo, object, str]]:
        """The finished retrain's model, loaded and ready, with a message; None otherwise."""
        outcome = self.job.poll()
        if outcome is None:
            return None
        if not outcome.accepted:
            return None, None, outcome.message
        try:
            model = model_dir.read(outcome.model)
            classifier = load_classifier(model, self.cfg.classifier.backend, self.cfg.classifier.threads)
        except ModelError as e:
            return None, None, f"new model not used: {e}"
        self.model = model
        return model, classifier, outcome.message

    def close(self) -> None:
        self.job.close()


def handle_typing(key: int, ui: Controls, saver: Saver) -> str:
    """Collect the new cat's name; Enter adds it, Esc cancels."""
    if key in KEY_ENTER:
        name, ui.typing = ui.typing, None
        return saver.add_class(name) if name.strip() else "no name typed"
    if key == KEY_ESC:
        ui.typing = None
    elif key in KEY_BACKSPACE:
        ui.typing = ui.typing[:-1]
    elif 32 <= key < 127:
        ui.typing += chr(key)
    return ""


def handle_key(key: int, ui: Controls, frame: Frame, predictions: list[Prediction],
               analyzer: Analyzer, saver: Saver, teacher: Teacher) -> str:
    """Apply one key; returns a toast message for the overlay, or ''."""
    if key == -1:
        return ""
    key &= 0xFF
    if ui.typing is not None:
        return handle_typing(key, ui, saver)
    if key in (ord("q"), KEY_ESC):
        ui.quit = True
    elif key == ord(" "):
        ui.paused = not ui.paused
    elif key == ord("b"):
        ui.bars = not ui.bars
    elif key == ord("h"):
        ui.help = not ui.help
    elif key == ord("c"):
        ui.crop_mode = "detect" if ui.crop_mode == "center" else "center"
        analyzer.set_mode(ui.crop_mode)
        return f"crop: {ui.crop_mode}"
    elif key == ord("n"):
        ui.typing = ""
    elif key == ord("t"):
        return teacher.start(saver)
    elif key == ord("s"):
        saver.snapshot(frame.image)
    elif key == ord("u") or ord("1") <= key <= ord("9"):
        # With several cats in view, the largest region is the one being labelled.
        x, y, w, h = max((p.region.box for p in predictions), key=lambda b: b[2] * b[3])
        saver.label(None if key == ord("u") else key - ord("1"), frame.image[y:y + h, x:x + w])
    return ""


class Outputs:
    """The window, annotated video, log and report of one run, opened on `stack` and closed with it."""

    def __init__(self, stack: ExitStack, source: Source, classes, window: bool, output: Optional[str],
                 log: Optional[str], report: Optional[str]):
        self.classes = classes
        self.video = stack.enter_context(VideoSink(output, source.fps, source.size)) if output else None
        self.log = stack.enter_context(JsonlLog(log)) if log else None
        self.report = None
        if report:
            from .report import VideoReport

            self.report = VideoReport(report, classes, source.fps)
            stack.callback(self.report.close)
        self.screen = Window() if window else None
        if self.screen:
            stack.callback(self.screen.close)
        self.draws = bool(self.screen or self.video)

    def record(self, frame: Frame, predictions: list[Prediction], shown, timing_ms: dict) -> float:
        """Write one processed frame everywhere; returns the milliseconds it took."""
        t0 = time.perf_counter()
        if self.log:
            self.log.write(log_record(frame.index, frame.time_s, predictions, self.classes, timing_ms))
        if self.video:
            self.video.write(shown)
        if self.report:
            self.report.add(frame.index, frame.time_s, frame.image, predictions)
        return (time.perf_counter() - t0) * 1000

    def set_classes(self, classes) -> None:
        self.classes = classes
        if self.report:
            self.report.add_classes(classes)

    def show(self, shown) -> None:
        if self.screen:
            self.screen.show(shown)

    def window_closed(self) -> bool:
        return bool(self.screen and self.screen.closed())


def run(cfg: Config, source: Source, model: ModelInfo, *, window: bool = False,
        keys: Optional[KeyProvider] = None, output: Optional[str] = None, log: Optional[str] = None,
        report: Optional[str] = None, max_frames: Optional[int] = None, out: TextIO = sys.stdout) -> int:
    """Run the loop over `source` until it ends; print the summary; return the exit status."""
    ui, stats, status, ended = Controls(cfg.regions.crop, cfg.overlay.bars), Stats(), EXIT_OK, "end of input"
    limit = max_frames or float("inf")
    with ExitStack() as stack:
        caught = stack.enter_context(caught_signals())
        stack.enter_context(source)
        outs = Outputs(stack, source, model.classes, window, output, log, report)
        saver = stack.enter_context(Saver(cfg.app.dataset_root, cfg.app.snapshots_dir, model.classes))
        classifier = load_classifier(model, cfg.classifier.backend, cfg.classifier.threads)
        analyzer = Analyzer(cfg, classifier, threshold_for(cfg, model))
        teacher = Teacher(cfg, model)
        stack.callback(teacher.close)
        keys = keys or (cv2.waitKey if window else no_keys)
        realtime = cfg.app.realtime if cfg.app.realtime is not None else window
        pace = Pacer(source.fps if realtime and not source.live else None)
        frames, frame, predictions = iter(source), None, []

        def hud(image, status=""):
            status = status or (f"new cat's name: {ui.typing}_" if ui.typing is not None else teacher.job.status)
            return draw(image, predictions, analyzer.classes, ui, stats, saver, status, cfg)

        try:
            while not (ui.quit or caught or stats.frames >= limit):
                if swap := teacher.swapped():  # between two frames, so no frame mixes two models
                    ui.notify(install(swap, cfg, analyzer, outs, saver, out, stats.frames), cfg.overlay.toast_s * 3)
                if not ui.paused or frame is None:
                    frame, capture_ms = timed(next, frames, None)
                    if frame is None:
                        break
                    if frame.status:  # a camera reconnecting: say so; there is nothing new to analyse
                        outs.show(hud(frame.image, frame.status))
                        handle_key(keys(1), ui, frame, predictions, analyzer, saver, teacher)
                        continue
                    predictions, detect_ms, infer_ms = analyzer(frame.image)
                for message in saver.poll() + [teacher.auto_start(saver)]:
                    ui.notify(message, cfg.overlay.toast_s)
                shown, draw_ms = timed(hud, frame.image) if outs.draws else (None, 0.0)
                if not ui.paused:
                    timing = dict(zip(STAGES, (capture_ms, detect_ms, infer_ms, draw_ms)))
                    output_ms = outs.record(frame, predictions, shown, timing)
                    stats.add(frame, predictions, {**timing, "output": output_ms}, source.fps)
                outs.show(shown)
                key = keys(pace.wait_ms(frame.index, ui.paused))
                ui.notify(handle_key(key, ui, frame, predictions, analyzer, saver, teacher), cfg.overlay.toast_s)
                ui.quit = ui.quit or outs.window_closed()
        except SourceLost as e:
            status, ended = EXIT_CAMERA_LOST, str(e)
        if caught:
            status, ended = 128 + caught[0], f"interrupted by {signal.Signals(caught[0]).name}"
        elif ui.quit or stats.frames >= limit:
            ended = "quit" if ui.quit else f"stopped after --max-frames {max_frames}"
    print(stats.summary(ended, analyzer.classes), file=out, flush=True)
    return status


def install(swap, cfg: Config, analyzer: Analyzer, outs: Outputs, saver: Saver, out: TextIO, frames: int) -> str:
    """Put a retrained model to use, when it was accepted; returns the message for the screen."""
    model, classifier, message = swap
    if model is not None:
        analyzer.swap(classifier, threshold_for(cfg, model))
        outs.set_classes(model.classes)
        saver.set_classes(model.classes)
    print(f"knyang-cam: after frame {frames}: {message}", file=out, flush=True)
    return message


def threshold_for(cfg: Config, model: ModelInfo) -> float:
    """The config's unknown threshold when set, else the model's own."""
    t = cfg.smoothing.unknown_threshold
    return model.unknown_threshold if t is None else t


def timed(fn, *args):
    t0 = time.perf_counter()
    result = fn(*args)
    return result, (time.perf_counter() - t0) * 1000


def draw(image, predictions, classes, ui: Controls, stats: Stats, saver: Saver, status: str, cfg: Config):
    n = max(stats.frames, 1)
    hud = overlay.Hud(fps=stats.frames / max(time.perf_counter() - stats.started, 1e-9),
                      timing_ms={s: stats.stage_ms[s] / n for s in STAGES}, crop_mode=ui.crop_mode,
                      show_bars=ui.bars, show_help=ui.help, paused=ui.paused,
                      toast=ui.toast if time.monotonic() < ui.toast_until else "", status=status,
                      saved_counts=dict(saver.counts))
    return overlay.draw(image, predictions, classes, hud, font=cfg.overlay.font)


class Pacer:
    """How long to wait for a key so a file plays at its own frame rate (None: as fast as possible)."""

    def __init__(self, fps: Optional[float]):
        self.fps = fps
        self._origin: Optional[tuple[float, int]] = None

    def wait_ms(self, index: int, paused: bool) -> int:
        if self.fps is None or paused:
            self._origin = None  # after a pause, the clock restarts from the current frame
            return 30 if paused else 1
        if self._origin is None:
            self._origin = (time.perf_counter(), index)
        start, first = self._origin
        due = start + (index + 1 - first) / self.fps
        return max(1, int((due - time.perf_counter()) * 1000))
