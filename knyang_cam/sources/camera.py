"""A webcam (by index or device path), read on a thread that keeps only the newest frame and reconnects."""
from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from .. import opencv_log
from ..config import CameraConfig
from ..errors import UserError
from .base import Frame, Source, SourceLost, fps_or_fallback

# A camera waiting to reconnect hands the app a status frame this often (seconds).
WAIT_STEP_S = 0.1
# How long closing a camera waits for its reader thread: one stuck in a stalled stream's read (up to
# STREAM_TIMEOUT_S) is left to release its capture itself, so Ctrl-C or q end the run at once.
CLOSE_WAIT_S = 0.5


def _camera_backends() -> list[tuple[int, str]]:
    """Backends to try, the platform's native one first (as ultralytics and OpenCV's samples do)."""
    native = {"linux": [(cv2.CAP_V4L2, "V4L2")], "win32": [(cv2.CAP_DSHOW, "DSHOW"), (cv2.CAP_MSMF, "MSMF")],
              "darwin": [(cv2.CAP_AVFOUNDATION, "AVFOUNDATION")]}
    return native.get(sys.platform, []) + [(cv2.CAP_ANY, "ANY")]


def open_camera(index: int | str, cfg: CameraConfig) -> tuple[cv2.VideoCapture, np.ndarray]:
    """Open camera `index` (or a device path, /dev/video2) and read one frame, or raise UserError
    naming the backends tried."""
    tried = []
    for backend, backend_name in _camera_backends():
        tried.append(backend_name)
        with opencv_log.silent():
            cap = cv2.VideoCapture(index, backend)
            if cap.isOpened():
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.width)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.height)
                cap.set(cv2.CAP_PROP_FPS, cfg.fps)
                ok, frame = cap.read()
                if ok:
                    return cap, frame
            cap.release()
    raise UserError(f"cannot open camera {index} (backends tried: {', '.join(tried)}): it is not "
                    "connected, another program holds it, or it gives no frames; try another index, "
                    "--source FILE, or --source demo (the bundled clip)")


class Opening:
    """A camera's opener run on its own thread; a capture it opens after the camera was closed is released."""

    def __init__(self, opener: Callable[[], tuple[cv2.VideoCapture, np.ndarray]]):
        self.done = threading.Event()
        self.result: tuple[cv2.VideoCapture, np.ndarray] | None = None  # None: the open failed (a UserError)
        self.refusal: UserError | None = None  # why, for a first open; a reconnect only counts the attempt
        self.error: Exception | None = None  # anything else: a bug, raised where the camera is read
        self._lock = threading.Lock()
        self._abandoned = False
        threading.Thread(target=self._run, args=(opener,), daemon=True, name="camera-open").start()

    def _run(self, opener) -> None:
        result, error = None, None
        try:
            result = opener()
        except UserError as e:
            self.refusal = e
        except Exception as e:  # noqa: BLE001  (handed to the reading thread)
            error = e
        with self._lock:
            if self._abandoned and result is not None:
                result[0].release()
                result = None
            self.result, self.error = result, error
        self.done.set()

    def abandon(self) -> None:
        with self._lock:
            self._abandoned = True
            if self.result is not None:
                self.result[0].release()
                self.result = None


class Camera(Source):
    """A live camera read on a thread that keeps only the newest frame (no growing lag).

    When the camera stops delivering, it is reopened up to `reconnect_attempts` times;
    meanwhile the last frame is re-sent with a status line for the window. If it stays
    lost, iteration ends by raising SourceLost after the camera is released.
    `opener` returns an opened capture and its first frame; it exists so a test can
    hand in a capture that really fails.
    """

    live = True
    # No frame for this long means the camera is gone even if read() has not failed.
    stall_s = 2.0

    def __init__(self, index: int | str, cfg: CameraConfig,
                 opener: Callable[[], tuple[cv2.VideoCapture, np.ndarray]] | None = None,
                 name: str | None = None, opened: tuple[cv2.VideoCapture, np.ndarray] | None = None):
        self.name = name or f"camera {index}"
        self._cfg = cfg
        self._opener = opener or (lambda: open_camera(index, cfg))
        self._cap, first = opened or self._opener()
        self.fps = fps_or_fallback(self._cap.get(cv2.CAP_PROP_FPS))
        self.size = (first.shape[1], first.shape[0])
        self._newest: np.ndarray | None = first
        self._failed = False
        self._cond = threading.Condition()
        self._opening: Opening | None = None
        self._thread = self._start_reader()

    def _start_reader(self) -> threading.Thread:
        # Each reader has its own stop flag: a lost one still blocked in read() must not read on
        # when the next reader starts.
        self._stop = threading.Event()
        thread = threading.Thread(target=self._read_loop, args=(self._cap, self._stop), daemon=True,
                                  name="camera-reader")
        thread.start()
        return thread

    def _read_loop(self, cap: cv2.VideoCapture, stop: threading.Event) -> None:
        """Read `cap` until `stop` or a failed read, then release it: the reader owns its capture, since
        releasing it from another thread while read() blocks (a stalled stream) frees what FFmpeg still uses."""
        try:
            while not stop.is_set():
                ok, image = cap.read()
                with self._cond:
                    if stop.is_set():
                        return  # a frame of a capture already given up is not the newest
                    if not ok:
                        self._failed = True
                        self._cond.notify()
                        return
                    self._newest = image
                    self._cond.notify()
        finally:
            cap.release()

    def _next_image(self) -> tuple[np.ndarray | None, bool]:
        """(the newest unseen frame or None, whether the reader failed), after waiting at most WAIT_STEP_S:
        the caller decides when a wait has become a stall, so it never blocks the app longer than that."""
        with self._cond:
            self._cond.wait_for(lambda: self._newest is not None or self._failed, timeout=WAIT_STEP_S)
            image, self._newest = self._newest, None
            return image, self._failed

    def _reopen(self) -> Opening:
        """Stop reading the lost capture and start opening it anew on a thread, which first waits (up to
        `stall_s`) for the old reader to release it: a device is opened once at a time."""
        self._stop.set()
        lost, opener = self._thread, self._opener

        def reopen():
            lost.join(timeout=self.stall_s)
            return opener()

        self._opening = Opening(reopen)
        return self._opening

    def _adopt(self, opening: Opening) -> bool:
        """Read from the capture `opening` opened; False when it failed."""
        self._opening = None
        if opening.error is not None:
            raise opening.error
        if opening.result is None:
            return False
        self._cap, first = opening.result
        self._failed, self._newest = False, first
        self._thread = self._start_reader()
        return True

    def __iter__(self) -> Iterator[Frame]:
        start, index, last = time.monotonic(), 0, None
        seen = time.monotonic()  # when the last frame came: no frame for stall_s is a lost camera
        while True:
            image, failed = self._next_image()
            if image is not None:
                last, seen = image, time.monotonic()
                yield Frame(index, seen - start, image)
                index += 1
                continue
            if not failed and time.monotonic() - seen < self.stall_s:
                yield Frame(index, time.monotonic() - start, last, waiting=True)
                continue
            for attempt in range(1, self._cfg.reconnect_attempts + 1):
                status = f"{self.name} lost: reconnecting ({attempt}/{self._cfg.reconnect_attempts})"
                yield Frame(index, time.monotonic() - start, last, status=status)
                deadline = time.monotonic() + self._cfg.reconnect_delay_s
                while (left := deadline - time.monotonic()) > 0:
                    time.sleep(min(left, WAIT_STEP_S))
                    if deadline > time.monotonic():  # still waiting: the app keeps its window, keys and Ctrl-C
                        yield Frame(index, time.monotonic() - start, last, status=status)
                opening = self._reopen()
                # A stream's open blocks up to STREAM_TIMEOUT_S: the app keeps its frames meanwhile too.
                while not opening.done.wait(WAIT_STEP_S):
                    yield Frame(index, time.monotonic() - start, last, status=status)
                if self._adopt(opening):
                    seen = time.monotonic()
                    break
            else:
                self.close()
                raise SourceLost(f"{self.name} stopped delivering frames "
                                 f"({self._cfg.reconnect_attempts} reconnect attempts failed)")

    def close(self) -> None:
        """Stop the reader thread, which releases the capture (one still opening, once open); waits at most
        CLOSE_WAIT_S for it: a reader blocked in a stalled stream's read releases it when the read times out."""
        if self._opening is not None:
            self._opening.abandon()
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=CLOSE_WAIT_S)


def open_device(path: str, cfg: CameraConfig) -> Camera:
    """A camera by its device path (/dev/video2), which must exist."""
    if not Path(path).exists():
        raise UserError(f"no camera device {path} (`ls /dev/video*` lists the cameras; "
                        "or pass its index, e.g. --source 0)")
    return Camera(path, cfg, name=path)

