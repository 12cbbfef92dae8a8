"""The live loop: source -> regions -> one batched classification -> smoothing -> overlay -> outputs.

Keys come from a key provider, a callable like `cv2.waitKeyEx(delay_ms) -> code or -1`,
so tests drive every key without a display.

Exit statuses (README lists them):
0 the source ended, `q`/Esc, the window was closed, or --max-frames was reached;
2 a user error (raised as UserError before the loop starts);
3 the camera stopped delivering frames and reconnecting failed;
128 + signal number when interrupted: 130 for Ctrl-C (SIGINT), 143 for SIGTERM, 129 for SIGHUP.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TextIO

import cv2
import numpy as np

from . import console, model_dir, overlay, paths
from .background_retrain import BackgroundRetrain
from .classify import load_classifier
from .config import Config
from .cuts import CutDetector
from .dataset import Saver
from .errors import EXIT_BROKEN_PIPE, OutputError, UserError
from .model_dir import ModelError, ModelInfo
from .regions import SeenCats, crops, make_finder, surest, views_of, zoom_factors
from .results import NOT_MINE, UNKNOWN, UNLABELED, Prediction
from .sinks import JsonlLog, LogReaderGone, VideoSink, log_record
from .smoothing import Smoother, one_box_per_cat
from .sources import Frame, Source, SourceLost

EXIT_OK, EXIT_CAMERA_LOST = 0, 3  # 2 (user error) comes from UserError.exit_code
WINDOW = "knyang-cam"
KEY_ESC = 27
KEY_ENTER = (10, 13)
KEY_BACKSPACE = (8, 127)
# cv2.waitKeyEx's codes beyond ASCII. X11 windows give keysyms (GTK adds the modifiers above bit 16): the
# editing keys are mapped to their ASCII codes, the rest (arrows, F keys) do nothing, where their low byte
# would have typed a letter (Left is 0xFF51, 'Q'). OpenCV's Qt window (opencv-python's on Linux) gives every
# letter in lower case, Shift held or not, and Shift itself as a key: it makes the next typed letter a capital.
X11_KEYS = {0xFF08: 8, 0xFF0D: 13, 0xFF8D: 13, 0xFF1B: KEY_ESC}
KEY_SHIFT = (0xFFE1, 0xFFE2)
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
    """The key provider without a window: waits `delay_ms` like cv2.waitKeyEx and never has a key (-1)."""
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
    typing: str | None = None  # the new cat's name while `n` collects it
    shift: bool = False  # the last key was Shift (KEY_SHIFT): the next letter typed is a capital
    toast: str = ""
    toast_until: float = 0.0

    def notify(self, message: str, seconds: float) -> None:
        """Show `message` as the toast for `seconds`; an empty message leaves the current toast."""
        if message:
            self.toast, self.toast_until = message, time.monotonic() + seconds


class Analyzer:
    """One frame in, smoothed predictions out, with the time spent detecting and inferring.

    Every region of a frame (one per cat in detect mode, none when no cat is in view) goes to the
    classifier in one batched call: a new region in all its `regions.zooms` views, a tracked one
    in one of them a frame, in turn (`regions.views_in_turn`).
    """

    def __init__(self, cfg: Config, classifier, unknown_threshold: float):
        self.cfg, self.classifier = cfg, classifier
        self.finder = make_finder(cfg.regions.crop, cfg.regions, cfg.classifier.threads)
        self.factors = zoom_factors(cfg.regions.zooms, cfg.regions.zoom_step)
        in_turn = cfg.regions.views_in_turn
        self.smoother = Smoother.from_config(classifier.classes, cfg.smoothing, unknown_threshold,
                                             recent=len(self.factors) if in_turn else 1, crop=cfg.regions.crop)
        self.cuts = CutDetector(cfg.smoothing.cut_threshold)
        self.seen_cats = SeenCats(cfg.regions.sure_cat, cfg.regions.flat, cfg.smoothing.forget_after)
        self.turn = 0
        self.shape: tuple[int, ...] | None = None  # the last frame's (height, width)

    def set_mode(self, mode: str) -> None:
        """Look for regions by crop `mode` ('center' or 'detect') from the next frame; every track is forgotten."""
        self.finder = make_finder(mode, self.cfg.regions, self.cfg.classifier.threads)
        self.smoother.alpha = self.cfg.smoothing.alpha_for(mode)
        self.smoother.reset()

    @property
    def classes(self) -> tuple[str, ...]:
        """The current classifier's class names, in its output order."""
        return self.classifier.classes

    def swap(self, classifier, unknown_threshold: float) -> None:
        """Classify with `classifier` from the next frame; tracks carry over only when its classes are the same."""
        self.classifier = classifier
        self.smoother.reset(classifier.classes, unknown_threshold)

    def __call__(self, image: np.ndarray) -> tuple[list[Prediction], float, float]:
        t0 = time.perf_counter()
        shape, self.shape = self.shape, image.shape[:2]
        if self.cuts(image) or shape not in (None, self.shape):
            # A cut, or a camera back at another resolution (the same scene: no cut, but the boxes held are
            # in the old frame's pixels): the boxes held or tracked are wrong; search this frame afresh.
            self.smoother.reset()
            getattr(self.finder, "reset", lambda: None)()
        regions = self.finder(image)
        t1 = time.perf_counter()
        in_turn = self.smoother.recent > 1
        fresh = [not t for t in self.smoother.tracked(regions)] if in_turn else [True] * len(regions)
        views, owners = views_of(regions, self.factors, fresh, self.turn, image.shape[1], image.shape[0],
                                 self.cfg.regions.centre_view)
        self.turn += 1
        probs = surest(self.classifier.predict(crops(image, views, self.classifier.input_size)), owners, len(regions))
        shown = self.seen_cats(self.smoother.update(regions, probs))
        predictions = one_box_per_cat(shown, self.cfg.smoothing.same_cat_iou)
        return predictions, (t1 - t0) * 1000, (time.perf_counter() - t1) * 1000


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


# OpenCV cannot tell the screen's size, and a window larger than the screen is cut off: a phone's upright
# 1080x1920 video showed its top half on a 1920x1080 screen, the bars and often the cat below the edge.
# A larger picture is shown scaled down to fit this (room for a title bar and a task bar on 1920x1080).
SHOWN_MAX = (1600, 900)


def x_server_answers() -> bool:
    """Whether the X server that DISPLAY names takes a connection: where it does not (a stale DISPLAY in tmux
    or over SSH), OpenCV's Qt prints that no platform plugin could be initialised and aborts the process."""
    try:
        xcb = ctypes.CDLL("libxcb.so.1")  # what Qt's own xcb plugin connects with
    except OSError:
        return True  # no libxcb to ask: OpenCV's window says what it can
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = (ctypes.c_char_p, ctypes.c_void_p)
    xcb.xcb_connection_has_error.argtypes = (ctypes.c_void_p,)
    xcb.xcb_disconnect.argtypes = (ctypes.c_void_p,)
    connection = xcb.xcb_connect(None, None)  # never NULL: a failed one is an error connection
    try:
        return xcb.xcb_connection_has_error(connection) == 0
    finally:
        xcb.xcb_disconnect(connection)


class Window:
    """The app's OpenCV window; raises UserError when there is no display to open it on."""

    def __init__(self):
        # opencv-python's window is Qt's with its X11 plugin alone: under Wayland it is XWayland's, in DISPLAY.
        if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
            raise UserError("no display to open a window on (DISPLAY is not set); use --headless")
        if sys.platform.startswith("linux") and not x_server_answers():
            raise UserError(f"cannot open a window on display {os.environ['DISPLAY']} (DISPLAY): no X server takes "
                            f"the connection there (SSH without -X, a desktop session that ended); use --headless")
        # GUI_NORMAL: just the picture, without the Qt toolbar of zoom and save buttons.
        cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
        self.shown = False

    def show(self, image: np.ndarray) -> None:
        """Put `image` (BGR) in the window, scaled down to fit SHOWN_MAX; it is painted at the next cv2.waitKeyEx."""
        h, w = image.shape[:2]
        scale = min(SHOWN_MAX[0] / w, SHOWN_MAX[1] / h)
        if scale < 1:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        cv2.imshow(WINDOW, image)
        self.shown = True

    def closed(self) -> bool:
        """The user closed the window with the title bar's button."""
        if not self.shown:
            return False
        try:
            return cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:
            # OpenCV's Qt backend drops its GUI with the last window the window manager closed, and then
            # raises ("NULL guiReceiver") for it: the window is gone, which ends the run like `q`.
            return True

    def close(self) -> None:
        """Destroy the window; the run's ExitStack calls it once, at the end."""
        try:
            cv2.destroyWindow(WINDOW)
        except cv2.error:
            pass  # already closed by the window manager (see closed): nothing left to destroy


@contextmanager
def caught_signals():
    """Turn SIGINT/SIGTERM/SIGHUP into a flag the loop checks between frames, for a clean end."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def on_signal(signum, _frame):
        if caught:  # a second Ctrl-C: the user will not wait for the clean end; unwind now
            raise KeyboardInterrupt(signum)
        caught.append(signum)

    # SIGHUP too (not on Windows): closing the terminal or a dropped SSH session sends it, and its default
    # kills the run with its video unfinished and its log under a temporary name the next run sweeps away.
    stops = (signal.SIGINT, signal.SIGTERM) + ((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ())
    old = {s: signal.signal(s, on_signal) for s in stops}
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
        """Start a background retrain of the current model; returns the toast (a refusal while one runs)."""
        if not self.job.start(self.model.path):
            # The model is swapped in as soon as the child says so; the child exits a second or two later.
            return "the last retrain is still closing: press t again in a moment" if self.job.closing \
                else "a retrain is already running"
        self._labelled_at_start = saver.labelled
        return "retraining in the background"

    def auto_start(self, saver: Saver) -> str:
        """Start a retrain once `retrain.auto_after` crops were labelled since the last; returns its toast, or ''."""
        due = self.cfg.retrain.auto_after and saver.labelled - self._labelled_at_start >= self.cfg.retrain.auto_after
        return self.start(saver) if due and not self.job.running else ""

    def swapped(self) -> tuple[ModelInfo, object, str] | None:
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
        """Stop a running retrain; nothing when none runs."""
        self.job.close()


@dataclass(frozen=True)
class Action:
    """What a key asks for: `do` names it; `arg` is a class index, a folder name or a typed character."""

    do: str
    arg: object = None


KEY_ACTIONS = {ord(" "): "pause", ord("b"): "bars", ord("h"): "help", ord("c"): "crop", ord("n"): "new_cat",
           ord("t"): "retrain", ord("s"): "snapshot"}
SET_ASIDE = {ord("u"): UNLABELED, ord("x"): NOT_MINE}


def handle_key(key: int, ui: Controls) -> Action | None:
    """The action `key` asks for, or None; while a new cat's name is typed, keys edit the name."""
    if key == -1:
        return None
    key = X11_KEYS.get(key & 0xFFFF, key & 0xFFFF)
    if key in KEY_SHIFT:
        return Action("shift")
    if key > 0xFF:
        return None
    if ui.typing is not None:
        if key in KEY_ENTER:
            return Action("add_class")
        if key == KEY_ESC:
            return Action("cancel_typing")
        if key in KEY_BACKSPACE:
            return Action("backspace")
        return Action("type", chr(key)) if 32 <= key < 127 else None
    if ord("A") <= key <= ord("Z"):
        # Caps Lock (or Shift) gives the capital, which no key means: 'Q' quits as 'q' does.
        key += ord("a") - ord("A")
    if key in (ord("q"), KEY_ESC):
        return Action("quit")
    if key in KEY_ACTIONS:
        return Action(KEY_ACTIONS[key])
    if key in SET_ASIDE:
        return Action("set_aside", SET_ASIDE[key])
    if ord("1") <= key <= ord("9"):
        return Action("label", key - ord("1"))
    return None


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


class Session:
    """The loop's state, owned by `run`: what the keys change and what each frame goes through and to."""

    def __init__(self, cfg: Config, ui: Controls, analyzer: Analyzer, saver: Saver, teacher: Teacher,
                 outputs: Outputs, stats: Stats, out: TextIO, record_hud: bool = False):
        self.cfg, self.ui, self.analyzer, self.saver, self.teacher = cfg, ui, analyzer, saver, teacher
        self.outputs, self.stats, self.out, self.record_hud = outputs, stats, out, record_hud
        self.frame: Frame | None = None
        self.predictions: list[Prediction] = []

    def largest_crop(self) -> np.ndarray | None:
        """The crop being labelled: with several cats in view the largest region; None with none."""
        if self.frame is None or not self.predictions:
            return None
        x, y, w, h = max((p.region.box for p in self.predictions), key=lambda b: b[2] * b[3])
        return self.frame.image[y:y + h, x:x + w]

    def apply(self, action: Action | None) -> str:
        """Carry out a key's action; returns a toast message for the overlay, or ''."""
        if action is None:
            return ""
        ui, do = self.ui, action.do
        shift, ui.shift = ui.shift, do == "shift"
        if do == "quit":
            ui.quit = True
        elif do in ("pause", "bars", "help"):
            attr = {"pause": "paused"}.get(do, do)
            setattr(ui, attr, not getattr(ui, attr))
        elif do == "crop":
            ui.crop_mode = "detect" if ui.crop_mode == "center" else "center"
            self.analyzer.set_mode(ui.crop_mode)
            return f"crop: {ui.crop_mode}"
        elif do == "new_cat":
            ui.typing = ""
        elif do == "type":
            ui.typing += action.arg.upper() if shift else action.arg
        elif do == "backspace":
            ui.typing = ui.typing[:-1]
        elif do == "cancel_typing":
            ui.typing = None
        elif do == "add_class":
            name, ui.typing = ui.typing, None
            return self.saver.add_class(name) if name.strip() else "no name typed"
        elif do == "retrain":
            return self.teacher.start(self.saver)
        elif do == "snapshot" and self.frame is not None:
            self.saver.snapshot(self.frame.image)
        elif do in ("label", "set_aside"):
            crop = self.largest_crop()
            if crop is None:
                return "no cat to label"
            if do == "label":
                self.saver.label(action.arg, crop)
            else:
                self.saver.set_aside(action.arg, crop)
        return ""


def run(cfg: Config, source: Source, model: ModelInfo, *, window: bool = False,
        keys: KeyProvider | None = None, output: str | None = None, log: str | None = None,
        report: str | None = None, max_frames: int | None = None, out: TextIO | None = None,
        record_hud: bool = False) -> int:
    """Run the loop over `source` until it ends; print the summary (on `out`, default stdout); return the
    exit status. The window shows the HUD; `output` records without it unless `record_hud`."""
    out = out or sys.stdout
    planned = paths.check_app([], output, log, report)  # the command line also checks them against its inputs
    limit = max_frames or float("inf")
    with ExitStack() as stack:
        caught = stack.enter_context(caught_signals())
        stack.enter_context(source)
        classifier = load_classifier(model, cfg.classifier.backend, cfg.classifier.threads)  # before any output
        outputs = Outputs(stack, source, model.classes, window, planned, record_hud)
        saver = stack.enter_context(Saver(cfg.app.dataset_root, cfg.app.snapshots_dir, model.classes))
        teacher = Teacher(cfg, model)
        stack.callback(teacher.close)
        s = Session(cfg, Controls(cfg.regions.crop, cfg.overlay.bars),
                    Analyzer(cfg, classifier, threshold_for(cfg, model)), saver, teacher, outputs, Stats(), out,
                    record_hud)
        print(console.start_line(model.path, model.classes, classifier.backend, source, s.ui.crop_mode),
              file=out, flush=True)
        realtime = cfg.app.realtime if cfg.app.realtime is not None else window
        status, ended = play(s, source, keys or (cv2.waitKeyEx if window else no_keys), window,
                             Pacer(source.fps if realtime and not source.live else None),
                             stop=lambda: s.ui.quit or caught or s.stats.frames >= limit)
        if caught:
            status, ended = 128 + caught[0], f"interrupted by {signal.Signals(caught[0]).name}"
        elif s.ui.quit or s.stats.frames >= limit:
            ended = "quit" if s.ui.quit else f"stopped after --max-frames {max_frames}"
        # The stack stops it next; say so rather than lose it quietly (one that told its result is only exiting).
        if teacher.job.running and not teacher.job.closing:
            ended += "; the retrain still running was stopped"
    print(s.stats.summary(ended, s.analyzer.classes), file=out, flush=True)
    if not s.stats.frames and (output or log or report):
        print("knyang-cam: no frame was analysed: earlier --output, --log and --report files are left as they were",
              file=out, flush=True)
    return status


def play(s: Session, source: Source, keys: KeyProvider, window: bool, pace: Pacer,
         stop: Callable[[], object]) -> tuple[int, str]:
    """Each frame through the analyser, drawing, outputs and keys until `stop()` or the input ends; returns
    the exit status and why it ended."""
    cfg, outputs, frames, held = s.cfg, s.outputs, iter(source), False
    try:
        while not stop():
            if swap := s.teacher.swapped():  # between two frames, so no frame mixes two models
                s.ui.notify(install(s, swap), cfg.overlay.toast_s * 3)
            if not s.ui.paused or s.frame is None:
                frame, capture_ms = timed(next, frames, None)
                if frame is None:
                    if held or not (window and source.still and s.frame is not None):
                        break
                    # A photo shown for a second and gone: the last one stays, paused, until space or q.
                    held = s.ui.paused = True
                    s.ui.notify("the last photo: space or q ends the run", cfg.overlay.toast_s * 3)
                    continue
                s.frame = frame
                # A camera reconnecting (say so) or waiting for its next frame: nothing new to analyse,
                # but the window, keys and Ctrl-C are served meanwhile.
                if frame.status or frame.waiting:
                    outputs.show(draw(s, frame.image, frame.status))
                    s.ui.notify(s.apply(handle_key(keys(1), s.ui)), cfg.overlay.toast_s)
                    # A window closed while the camera is away ends the run now, not after the reconnect.
                    s.ui.quit = s.ui.quit or outputs.window_closed()
                    continue
                s.predictions, detect_ms, infer_ms = s.analyzer(frame.image)
            for message in s.saver.poll() + [s.teacher.auto_start(s.saver)]:
                s.ui.notify(message, cfg.overlay.toast_s)
            shown, draw_ms = timed(draw, s, s.frame.image) if outputs.draws else (None, 0.0)
            if not s.ui.paused:
                timing = dict(zip(STAGES, (capture_ms, detect_ms, infer_ms, draw_ms)))
                output_ms = outputs.record(s.frame, s.predictions, shown, timing)
                s.stats.add(s.frame, s.predictions, {**timing, "output": output_ms}, source.fps)
            outputs.show(shown)
            key = keys(pace.wait_ms(s.frame.index, s.ui.paused))
            s.ui.notify(s.apply(handle_key(key, s.ui)), cfg.overlay.toast_s)
            s.ui.quit = s.ui.quit or outputs.window_closed()
    except SourceLost as e:
        return EXIT_CAMERA_LOST, str(e)
    except LogReaderGone as e:
        return EXIT_BROKEN_PIPE, str(e)
    return EXIT_OK, "end of input"


def install(s: Session, swap) -> str:
    """Put a retrained model to use, when it was accepted; returns the message for the screen."""
    model, classifier, message = swap
    if model is not None:
        s.analyzer.swap(classifier, threshold_for(s.cfg, model))
        s.outputs.set_classes(model.classes)
        s.saver.set_classes(model.classes)
    print(f"knyang-cam: after frame {s.stats.frames}: {message}", file=s.out, flush=True)
    return message


def threshold_for(cfg: Config, model: ModelInfo) -> float:
    """The config's unknown threshold when set, else the model's own."""
    t = cfg.smoothing.unknown_threshold
    return model.unknown_threshold if t is None else t


def timed(fn, *args):
    """`(fn(*args), the milliseconds it took)`."""
    t0 = time.perf_counter()
    result = fn(*args)
    return result, (time.perf_counter() - t0) * 1000


def draw(s: Session, image, status: str = ""):
    """(the window's picture with the HUD, the recorded one without it unless `record_hud`);
    None where there is no window or no recording."""
    ui, stats = s.ui, s.stats
    status = status or (f"new cat's name: {ui.typing}_" if ui.typing is not None else s.teacher.job.status)
    n = max(stats.frames, 1)
    hud = overlay.Hud(fps=stats.frames / max(time.perf_counter() - stats.started, 1e-9),
                      timing_ms={st: stats.stage_ms[st] / n for st in STAGES}, crop_mode=ui.crop_mode,
                      show_bars=ui.bars, show_help=ui.help, paused=ui.paused,
                      toast=ui.toast if time.monotonic() < ui.toast_until else "", status=status,
                      saved_counts=dict(s.saver.counts), label_keys=s.saver.classes)
    screen, record = s.outputs.screen is not None, s.outputs.video is not None
    classes, font = s.analyzer.classes, s.cfg.overlay.font
    with_hud = overlay.draw(image, s.predictions, classes, hud, font=font) \
        if screen or (record and s.record_hud) else None
    if not record:
        return with_hud, None
    return with_hud if screen else None, \
        with_hud if s.record_hud else overlay.draw(image, s.predictions, classes, None, font, ui.bars)


class Pacer:
    """How long to wait for a key so a file plays at its own frame rate (None: as fast as possible)."""

    def __init__(self, fps: float | None):
        self.fps = fps
        self._origin: tuple[float, int] | None = None

    def wait_ms(self, index: int, paused: bool) -> int:
        """Milliseconds to wait for a key after frame `index` to keep the file's own rate: >= 1, 30 while paused."""
        if self.fps is None or paused:
            self._origin = None  # after a pause, the clock restarts from the current frame
            return 30 if paused else 1
        if self._origin is None:
            self._origin = (time.perf_counter(), index)
        start, first = self._origin
        due = start + (index + 1 - first) / self.fps
        return max(1, int((due - time.perf_counter()) * 1000))
