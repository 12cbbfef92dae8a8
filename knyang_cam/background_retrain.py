"""Background retraining for the live app: a separate, low-priority process, polled between frames.

The retrain runs `python -m train.retrain` (`knyang_train.retrain` when installed from a
wheel; head only, cached features) in its own process at a lower CPU priority, so the live
loop keeps its frame rate and never imports TensorFlow. A reader thread turns the child's
JSON lines into a status line for the overlay and, at the end, one `Outcome`
that the loop picks up with `poll()` and swaps in between two frames.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import bundled, config, events
from .config import TrainConfig

# The clone goes on the child's path, so the app and the trainer it runs are the same tree.
_PROJECT = bundled.CLONE_ROOT
TRAINER = bundled.trainer_package()
# Lower priority than the live loop: the retrain may use every core, but only what the loop leaves.
STDERR_FILE = "stderr.txt"  # the child's stderr, in its scratch folder
NICENESS = 10


@dataclass(frozen=True)
class Outcome:
    """How a retrain ended: `accepted` or not, the message for the screen, and the new model when accepted."""

    accepted: bool
    message: str
    model: Path | None = None  # the new model directory, set when accepted


class BackgroundRetrain:
    """One retrain at a time; `start()` while one runs is refused."""

    def __init__(self, dataset_root: str | Path, models_dir: str | Path, max_drop: float = 0.02,
                 train: TrainConfig | None = None, threads: int = 0):
        # Expanded here: the child gets "~/cats" as an argument, not through a shell, and the app reads
        # back the model directory the child names.
        self.dataset_root = Path(dataset_root).expanduser()
        self.models_dir = Path(models_dir).expanduser()
        self.max_drop = max_drop
        self.train = train or TrainConfig()
        self.threads = threads
        self.status: str | None = None
        self._proc: subprocess.Popen | None = None
        self._outcome: Outcome | None = None
        self._lock = threading.Lock()
        self._finished = threading.Event()
        self._started = 0.0
        self._told = False

    @property
    def running(self) -> bool:
        """True while the retrain process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def closing(self) -> bool:
        """True while a retrain that already told its result is still exiting (TensorFlow's teardown)."""
        return self._told and self.running

    def start(self, current_model: str | Path) -> bool:
        """Launch a retrain of `current_model` into a new timestamped folder of models_dir; False while one runs."""
        if self.running:
            return False
        out = self.models_dir / f"{Path(current_model).name.split('-retrained')[0]}-retrained-" \
                                f"{time.strftime('%Y%m%d-%H%M%S')}"
        # The child gets this run's train settings, whatever file (or none) they came from.
        config_file = Path(tempfile.mkdtemp(prefix="knyang-retrain-")) / "config.yaml"
        config_file.write_text(config.dump({"train": dataclasses.asdict(self.train)}))
        cmd = [sys.executable, "-m", f"{TRAINER}.retrain", "--model", str(current_model),
               "--data", str(self.dataset_root), "--out", str(out), "--max-drop", str(self.max_drop),
               "--threads", str(self.threads), "--config", str(config_file)]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
        if TRAINER == "train":
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PROJECT), env.get("PYTHONPATH")) if p)
        self._outcome = None
        self._told = False
        self._finished.clear()
        self.status = "retraining: starting"
        self._started = time.monotonic()
        # Its stderr goes to a file: a failure that is no error event (a crash) is told by its last line.
        with open(config_file.parent / STDERR_FILE, "w") as stderr:
            self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr,
                                          stdin=subprocess.DEVNULL, text=True, env=env,
                                          preexec_fn=(lambda: os.nice(NICENESS)) if hasattr(os, "nice") else None)
        threading.Thread(target=self._read, args=(self._proc, config_file.parent), daemon=True).start()
        return True

    def _read(self, proc: subprocess.Popen, scratch: Path) -> None:
        done = outcome = None
        for line in proc.stdout:
            event = events.parse(line)
            if event is None:
                continue
            if event["event"] == events.PROGRESS:
                self.status = f"retraining: {event['text']}"
                continue
            done = event
            if done["event"] == events.DONE:
                # Handed out at once: the model directory is complete before the event is printed, and
                # the child's exit (TensorFlow's teardown) takes a second or more.
                outcome = self._outcome_of(done, None)
                with self._lock:
                    self._outcome = outcome
                self._told = True
                self.status = None
        code = proc.wait()
        last = _last_line(scratch / STDERR_FILE)
        shutil.rmtree(scratch, ignore_errors=True)
        if outcome is None:
            with self._lock:
                self._outcome = self._outcome_of(done, code, last)
        self.status = None
        self._finished.set()

    def _outcome_of(self, done: dict | None, code: int | None, last_line: str = "") -> Outcome:
        seconds = time.monotonic() - self._started
        if done is None:
            return Outcome(False, f"retraining failed (exit status {code})" + (f": {last_line}" if last_line else ""))
        if done["event"] == events.ERROR:
            return Outcome(False, f"retraining failed: {self._in_app_terms(done['message'])}")
        if done["accepted"]:
            timed = done.get("stages") or {}
            # What no stage covers: the child's start (Python, TensorFlow's import).
            stages = ", ".join(f"{k} {v:.1f} s" for k, v in {"start": seconds - sum(timed.values()), **timed}.items())
            return Outcome(True, f"new model in {seconds:.0f} s ({stages}): {done['reason']}", Path(done["out"]))
        return Outcome(False, f"new model kept aside in {done['out']}: {done['reason']}")

    def _in_app_terms(self, message: str) -> str:
        """The trainer's message with the settings the app user gave in place of its flags, which they never typed."""
        for flag, setting in (("--data", "app.dataset_root"), ("--out", "the new model folder in retrain.models_dir"),
                              ("--model", "the current model")):
            message = message.replace(f"{flag} ", f"{setting} ")
        return message

    def poll(self) -> Outcome | None:
        """The finished retrain's outcome, once; None while running or idle."""
        with self._lock:
            outcome, self._outcome = self._outcome, None
        return outcome

    def wait(self, timeout: float | None = None) -> Outcome | None:
        """Block until the running retrain ends (for tests and benchmarks), then poll."""
        if self._proc is None:
            return None
        self._finished.wait(timeout)
        return self.poll()

    def close(self) -> None:
        """Stop a running retrain (terminate, kill after 5 s) and let its reader remove its scratch folder;
        nothing when idle."""
        if self.running:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        if self._proc is not None:
            self._finished.wait(5)


def _last_line(path: Path) -> str:
    """The last non-empty line of a text file, '' when it has none or cannot be read."""
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""
