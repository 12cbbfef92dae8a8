"""The live loop: source -> analyzer (regions, one batched classification, smoothing) -> overlay -> outputs,
with the keys (keys.py) and the live retrain (teacher.py) served between frames.

Exit statuses (README lists them):
0 the source ended, `q`/Esc, the window was closed, or --max-frames was reached;
2 a user error (raised as UserError before the loop starts);
3 the camera stopped delivering frames and reconnecting failed;
128 + signal number when interrupted: 130 for Ctrl-C (SIGINT), 143 for SIGTERM, 129 for SIGHUP.
"""
from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from typing import TextIO

import cv2
import numpy as np

from . import console, overlay, paths
from .analyzer import Analyzer
from .classify import load_classifier
from .config import Config
from .dataset import Saver
from .errors import EXIT_BROKEN_PIPE
from .keys import Action, Controls, KeyProvider, handle_key, no_keys
from .model_dir import ModelInfo
from .outputs import Outputs
from .results import Prediction
from .sinks import LogReaderGone
from .sources import Frame, Source, SourceLost
from .stats import STAGES, Stats
from .teacher import Teacher

EXIT_OK, EXIT_CAMERA_LOST = 0, 3  # 2 (user error) comes from UserError.exit_code


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
