"""Frame sources: a webcam, a network camera, a video file, a folder or glob of images, or generated frames.

Every source has the same shape (after OpenCV's samples/video.py): it is opened,
and fails, up front with a UserError naming what it could not open; then it is
iterated for `Frame`s and closed (it is a context manager). `fps` and `size` are
known once it is open, so sinks can be set up before the first frame.
"""
from __future__ import annotations

import glob as globlib
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from . import opencv_log
from .config import CameraConfig
from .errors import UserError, native_lines_dropped
from .paths import is_camera_index, printable, utf8_name
from .stream_answer import http_answer, unreachable

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
FALLBACK_FPS = 30.0
MAX_CAMERA_INDEX = 255  # Linux numbers video devices 0-255; a larger index is a typo, not a camera
# A folder of photos has no frame rate of its own: on screen it plays as a slideshow.
SLIDESHOW_FPS = 1.0
# A damaged stretch of a video file longer than this many frames is taken for its end (VideoFile._next).
MAX_UNREADABLE = 300
# FFmpeg's tty demuxer reads a text file of these names as a video of its text drawn in a console font: a
# README.txt given as --source by mistake (or as a list of files) ran as 200 frames of "cats", exit status 0.
# Videos a folder or glob may hold where photos were meant: named in its error, as they are never read from one.
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".wmv", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
                  ".3gp", ".flv"}
TEXT_SUFFIXES = {".txt", ".nfo", ".asc", ".ans", ".art", ".diz", ".ice", ".vt"}
# FFmpeg prints its own diagnostics ("moov atom not found") beside ours; only fatal ones, unless the
# user asks for more. Read by OpenCV when it first uses FFmpeg, so setting it here is in time.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")
# Network cameras: URL schemes FFmpeg reads a live stream from.
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
# FFmpeg waits this long for a stream to open, or for its next packet, before giving up: long
# enough for a camera on Wi-Fi, short enough that a wrong URL fails while the user watches.
STREAM_TIMEOUT_S = 5.0
# A camera waiting to reconnect hands the app a status frame this often (seconds).
WAIT_STEP_S = 0.1
# How long closing a camera waits for its reader thread: one stuck in a stalled stream's read (up to
# STREAM_TIMEOUT_S) is left to release its capture itself, so Ctrl-C or q end the run at once.
CLOSE_WAIT_S = 0.5

# What the image libraries print on stderr themselves while a photo decodes: libjpeg about a truncated photo,
# libpng about a chunk it skips ("iCCP: known incorrect sRGB profile", common in photos from the web) or a
# photo it gives up on. The app says itself, in one line, when a photo is skipped.
DECODER_NOISE = r"(Premature end of JPEG file|Corrupt JPEG data|libpng (warning|error): )"


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


def _fps_or_fallback(fps: float) -> float:
    return float(fps) if fps and np.isfinite(fps) and fps > 0 else FALLBACK_FPS


# ---------------------------------------------------------------- files

class VideoFile(Source):
    """Every frame of a video file, in order, at its time in the file."""

    max_unreadable = MAX_UNREADABLE

    def __init__(self, path: str | Path):
        self.name = str(path)
        path = Path(path)
        if path.exists() and not path.is_file():  # a FIFO was 'not found'; a video is read with seeks
            raise UserError(f"{path} is a pipe or a device, not a video file: save the video to a file and give that")
        if not path.is_file():
            raise UserError(f"video file not found: {path}")
        if not utf8_name(path):
            raise UserError(f"cannot read {printable(path)} as a video: its name is not valid UTF-8, which "
                            "OpenCV cannot open; rename it")
        if path.suffix.lower() in TEXT_SUFFIXES:
            raise UserError(f"{path} is a text file, not a video: give a video file, a folder of images or a "
                            "glob such as 'photos/*.jpg' (quoted)")
        self._open(str(path), f"cannot read {path} as a video (not a video file, or a codec "
                              "OpenCV/FFmpeg cannot decode)")

    def _open(self, target: str, failure: str, params: Sequence[int] = ()) -> None:
        """Open `target` and read its first frame, or raise UserError(`failure`)."""
        with opencv_log.silent():
            self._cap = cv2.VideoCapture(target, cv2.CAP_ANY, list(params))
            count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)) if self._cap.isOpened() else 0
            self.length = count if count > 0 else None  # from the container: an estimate
            # A damaged start is a damaged stretch like any other, so a file whose first frames do not
            # decode is not refused whole.
            first, self._lost = self._next(0) if self._cap.isOpened() else (None, 0)
            # A frame's time is its timestamp in the file counted from the first frame's (FFmpeg's stream start
            # may lie before it, as in an mkv remuxed from an mp4): a phone's or screen recorder's video has a
            # variable frame rate, where the frame index over the average rate drifts (a frame at 59 s was
            # logged at 30 s).
            self._origin_ms = self._cap.get(cv2.CAP_PROP_POS_MSEC) if first is not None else 0.0
        if first is None:
            self._cap.release()
            raise UserError(failure)
        self._first = first
        self.fps = _fps_or_fallback(self._cap.get(cv2.CAP_PROP_FPS))
        self.size = (first.shape[1], first.shape[0])

    def __iter__(self) -> Iterator[Frame]:
        image, index, skipped = self._first, self._lost, self._lost
        self._first = None
        time_s = index / self.fps
        while image is not None:
            yield Frame(index, time_s, image)
            image, lost = self._next(index + 1)
            skipped += lost
            index, time_s = index + 1 + lost, self._time(index + 1 + lost, index, time_s)
        if skipped:
            print(f"warning: {self.name}: skipped {skipped} frames that did not decode", file=sys.stderr)
        # The container's count is an estimate (a variable frame rate misses by a few): only a clear shortfall
        # says the file was cut short, as a copy or download that stopped part way leaves it.
        if self.length is not None and self.length - index >= max(10, self.length // 10):
            print(f"warning: {self.name}: ended after {index} of the {self.length} frames its container "
                  f"announces: the file may be cut short", file=sys.stderr)

    def _time(self, index: int, last_index: int, last_s: float) -> float:
        """Frame `index`'s time, just read: its timestamp from the first frame's, or, where that does not come
        after frame `last_index`'s `last_s` (a raw .h264 stream reads 0 throughout), the frames between at the
        file's rate."""
        time_s = self._lost / self.fps + (self._cap.get(cv2.CAP_PROP_POS_MSEC) - self._origin_ms) / 1000
        return time_s if time_s > last_s else last_s + (index - last_index) / self.fps

    def _next(self, index: int) -> tuple[np.ndarray | None, int]:
        """The next frame that decodes, from frame `index` on, and how many did not before it; (None, 0) at the end.

        A damaged stretch in the middle of a file fails to decode while the frames after it still do:
        the file is read on while its container says frames remain (at most max_unreadable in a row),
        so its rest is not lost; frames that did not decode count only when a later one did.
        """
        for lost in range(self.max_unreadable + 1):
            ok, image = self._cap.read()
            if ok:
                return image, lost
            if self.length is None or index + lost + 1 >= self.length:
                break
        return None, 0

    def close(self) -> None:
        """Release the video file."""
        self._cap.release()


class PhotoFolder(Source):
    """A sorted list of still images (a folder, a glob, or one file), shown as a slideshow.

    Files that do not decode are skipped and reported on stderr, so one bad file in
    a folder of photos does not stop the run.
    """

    fps = SLIDESHOW_FPS
    still = True

    def __init__(self, paths: Sequence[Path], name: str):
        self.name = name
        self._paths = list(paths)
        first = self._decoded()
        self._first = next(first, None)
        if self._first is None:
            raise UserError(f"no readable images in {name}")
        self._rest = first
        self.size = (self._first.shape[1], self._first.shape[0])
        self.length = len(self._paths)

    def _decoded(self) -> Iterator[np.ndarray]:
        for path in self._paths:
            why = "not a readable image"
            try:
                # OpenCV logs a TIFF it cannot read in lines of its own (several for one photo).
                with native_lines_dropped(DECODER_NOISE), opencv_log.silent():
                    image = _read_photo(path)
            except OSError as e:
                image, why = None, f"cannot read it: {e.strerror or e}"
            except cv2.error:  # more pixels than OpenCV decodes (CV_IO_MAX_IMAGE_PIXELS): raised, not None
                image, why = None, "too many pixels to decode"
            if image is None:
                print(f"warning: skipping {path}: {why}", file=sys.stderr)
                continue
            yield image

    def __iter__(self) -> Iterator[Frame]:
        images = self._rest
        image, self._first = self._first, None
        index = 0
        while image is not None:
            yield Frame(index, index / self.fps, image)
            image = next(images, None)
            index += 1


def _read_photo(path: Path) -> np.ndarray | None:
    """The BGR image in `path` (EXIF orientation honoured), or None when it does not decode."""
    if utf8_name(path):
        return cv2.imread(str(path), cv2.IMREAD_COLOR)  # a truncated JPEG gives what it holds, the rest grey
    # cv2.imread crashes on a name that is not UTF-8: read by Python, decoded from memory (where a
    # truncated JPEG does not decode at all).
    data = np.fromfile(path, np.uint8)
    return cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None


def _image_files(paths) -> list[Path]:
    return sorted(p for p in map(Path, paths) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


# Phones save HEIC, which OpenCV does not decode: said by name, not as "no readable images" of a full folder.
HEIC_SUFFIXES = {".heic", ".heif"}
HEIC_FIX = "save them as JPEG (iPhone: Settings > Camera > Formats > Most Compatible)"


def _refuse_heic(paths, where: str, shown: int = 0) -> None:
    """UserError when a folder or glob without readable photos holds HEIC ones (`where` as _refuse_videos');
    with `shown` other photos, a warning that the HEIC ones are left out."""
    heic = [p for p in map(Path, paths) if p.suffix.lower() in HEIC_SUFFIXES and p.is_file()]
    if not heic:
        return
    said = f"{where} {len(heic)} HEIC photo{'s' if len(heic) > 1 else ''}, which OpenCV cannot read"
    if not shown:
        raise UserError(f"{said}: {HEIC_FIX}")
    print(f"warning: {said}; showing the other {shown}. To see them too, {HEIC_FIX}", file=sys.stderr)


def _refuse_videos(paths, where: str) -> None:
    """UserError when a folder or glob without photos holds videos (`where`: "folder X holds", "X matches"): a
    camera's folder of clips said only that no images were there, as if it were empty."""
    videos = sorted(p for p in map(Path, paths) if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    if videos:
        raise UserError(f"{where} {len(videos)} video{'s' if len(videos) > 1 else ''} and no photos: a "
                        f"folder or glob is read as photos; give one video at a time, e.g. --source {videos[0]}")


# ---------------------------------------------------------------- camera

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
                    "connected, another program holds it, or it gives no frames; try another index "
                    "or --source FILE")


class _Opening:
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
        self.fps = _fps_or_fallback(self._cap.get(cv2.CAP_PROP_FPS))
        self.size = (first.shape[1], first.shape[0])
        self._newest: np.ndarray | None = first
        self._failed = False
        self._cond = threading.Condition()
        self._opening: _Opening | None = None
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

    def _reopen(self) -> _Opening:
        """Stop reading the lost capture and start opening it anew on a thread, which first waits (up to
        `stall_s`) for the old reader to release it: a device is opened once at a time."""
        self._stop.set()
        lost, opener = self._thread, self._opener

        def reopen():
            lost.join(timeout=self.stall_s)
            return opener()

        self._opening = _Opening(reopen)
        return self._opening

    def _adopt(self, opening: _Opening) -> bool:
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


# ---------------------------------------------------------------- network cameras

def is_stream_url(spec: str) -> bool:
    """True when `spec` starts with a scheme FFmpeg reads a live stream from (rtsp://, http(s)://, ...)."""
    return re.match(rf"(?i)^({'|'.join(STREAM_SCHEMES)})://", spec) is not None


# Query parameters that carry a secret in camera URLs (`/videostream.cgi?user=admin&pwd=...`, `?token=...`).
SECRET_QUERY = re.compile(r"([?&;](?:pwd|pass|passwd|password|token|key|secret|auth|sig|signature)=)[^&#;]*",
                          re.IGNORECASE)


def redacted(url: str) -> str:
    """`url` without its password (rtsp://admin:secret@cam/ -> rtsp://admin:***@cam/) or secret query values
    (?pwd=secret -> ?pwd=***), for messages.

    As FFmpeg reads it: the address part runs to the first `/`, `?` or `#`, the user and password to its
    last `@` (a password may hold `@`), the user to the first `:`.
    """
    url = SECRET_QUERY.sub(r"\1***", url)
    m = re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*://([^/?#]*)", url)
    userinfo, at, host = m.group(1).rpartition("@") if m else ("", "", "")
    if not at or ":" not in userinfo:
        return url
    return f"{url[:m.start(1)]}{userinfo.split(':', 1)[0]}:***@{host}{url[m.end(1):]}"


# A still-image URL is fetched at most this often (seconds): a camera's snapshot page is not a video server.
SNAPSHOT_EVERY_S = 0.1


class _Snapshots:
    """An IP camera's still-image URL (`/snapshot.jpg`, `/cgi-bin/snapshot.cgi`) read as a capture: each
    read fetches the picture anew. FFmpeg reads such a URL as a video of one frame, which would end after
    that frame and be reconnected as a lost camera, "reconnecting" on screen, over and over."""

    def __init__(self, url: str, params: list[int]):
        self._url, self._params, self._last = url, params, time.monotonic()

    def read(self) -> tuple[bool, np.ndarray | None]:
        time.sleep(max(0.0, self._last + SNAPSHOT_EVERY_S - time.monotonic()))
        self._last = time.monotonic()
        with opencv_log.silent():
            cap = cv2.VideoCapture(self._url, cv2.CAP_FFMPEG, self._params)
            try:
                return cap.read() if cap.isOpened() else (False, None)
            finally:
                cap.release()

    def get(self, prop: int) -> float:
        return 1 / SNAPSHOT_EVERY_S if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self) -> None:
        pass


STREAM_PARAMS = (cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(STREAM_TIMEOUT_S * 1000),
                 cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(STREAM_TIMEOUT_S * 1000))


def open_stream(url: str) -> tuple[cv2.VideoCapture | _Snapshots, np.ndarray]:
    """Open a network stream through FFmpeg and read one frame, or raise UserError naming it."""
    params, started = list(STREAM_PARAMS), time.monotonic()
    with opencv_log.silent():
        cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
        ok, frame = cap.read() if cap.isOpened() else (False, None)
        # A still image ends after its frame (its frame count is no sure sign: FFmpeg guesses it from the size).
        again, newer = cap.read() if ok else (False, None)
    if again:
        return cap, newer
    cap.release()
    if ok:
        return _Snapshots(url, params), frame
    if time.monotonic() - started >= STREAM_TIMEOUT_S:  # FFmpeg waited out its timeout: a second look would too
        why = (f"no answer within {STREAM_TIMEOUT_S:g} s: check the address and port, and that the camera is on "
               "(try it with ffplay or VLC)")
    else:
        why = (unreachable(url, STREAM_TIMEOUT_S) or http_answer(url, STREAM_TIMEOUT_S)
               or "it answers, but with no video OpenCV/FFmpeg can read: check the path and password "
                  "(try it with ffplay or VLC)")
    raise UserError(f"cannot open stream {redacted(url)}: {why}")


class Stream(Camera):
    """A network camera (RTSP, HTTP(S) MPEG-TS or MJPEG, a still-image URL fetched again and again, ...)
    read like a webcam: newest frame on a thread, the same reconnect policy, SourceLost when it stays away."""

    # A read blocks up to STREAM_TIMEOUT_S before FFmpeg gives up; the reader must be allowed that.
    stall_s = STREAM_TIMEOUT_S + 1.0

    def __init__(self, url: str, cfg: CameraConfig, opened: tuple[cv2.VideoCapture, np.ndarray] | None = None):
        super().__init__(url, cfg, opener=lambda: _reopen_stream(url), name=redacted(url), opened=opened)


def _reopen_stream(url: str) -> tuple[cv2.VideoCapture | _Snapshots, np.ndarray]:
    """open_stream once a plain connection finds the camera back. OpenCV holds one lock over each FFmpeg
    open, which every other open waits for (finishing --output reads the video back): a reconnect to a camera
    that is off waited out its timeout there and held up Ctrl-C or q for as long. Not on the first open:
    a server of one client (`ffmpeg -listen 1`) would give its one connection to the probe."""
    if why := unreachable(url, STREAM_TIMEOUT_S):
        raise UserError(f"cannot open stream {redacted(url)}: {why}")
    return open_stream(url)


class Recording(VideoFile):
    """A video with a length of its own served over the network (http://host/clip.ts, a finished .m3u8
    playlist): read like a file, every frame in order to its end. Read as a camera, only the newest frame
    was kept and its end was taken for a lost camera: reconnecting played it again from the start, forever."""

    live = False
    # A read that fails may be a lost connection waiting out its timeout: the first one ends the video.
    max_unreadable = 0

    def __init__(self, url: str):
        self.name = redacted(url)
        self._open(url, f"cannot read {self.name}: it stopped answering, or is not a video OpenCV/FFmpeg "
                        "can decode", STREAM_PARAMS)


def open_network(url: str, cfg: CameraConfig) -> Stream | Recording:
    """A live camera at `url`, or a recording when FFmpeg gives it a length. The first connect runs on a
    thread, so Ctrl-C ends it at once instead of after FFmpeg's timeout."""
    opening = _Opening(lambda: open_stream(url))
    try:
        # In steps, as a reconnect waits: before Python 3.14 a wait without a timeout holds off Ctrl-C on Windows.
        while not opening.done.wait(WAIT_STEP_S):
            pass
    except KeyboardInterrupt:
        opening.abandon()
        raise
    if opening.error is not None:
        raise opening.error
    if opening.result is None:
        raise opening.refusal
    cap, first = opening.result
    if cap.get(cv2.CAP_PROP_FRAME_COUNT) > 0:  # a live camera's count is unknown: 0 or negative
        cap.release()
        return Recording(url)
    return Stream(url, cfg, opened=(cap, first))


def open_device(path: str, cfg: CameraConfig) -> Camera:
    """A camera by its device path (/dev/video2), which must exist."""
    if not Path(path).exists():
        raise UserError(f"no camera device {path} (`ls /dev/video*` lists the cameras; "
                        "or pass its index, e.g. --source 0)")
    return Camera(path, cfg, name=path)


# ---------------------------------------------------------------- synthetic

class Synthetic(Source):
    """Generated frames (a coloured background with a moving square), for tests, demos and soaks.

    Deterministic: frame i is a function of i only. `count=None` never ends.
    """

    def __init__(self, width: int = 640, height: int = 480, fps: float = 30.0,
                 count: int | None = None):
        self.name = "synthetic"
        self.size, self.fps, self._count = (width, height), float(fps), count
        gx, gy = np.meshgrid(np.linspace(40, 200, width), np.linspace(60, 180, height))
        self._base = np.dstack([gx, gy, np.full((height, width), 120.0)]).astype(np.uint8)

    def image(self, index: int) -> np.ndarray:
        """The BGR image of frame `index`; the same index always gives the same picture."""
        w, h = self.size
        image = self._base.copy()
        side = min(w, h) // 3
        x = int((w - side) * (0.5 + 0.5 * np.sin(index / 25.0)))
        y = int((h - side) * (0.5 + 0.5 * np.cos(index / 40.0)))
        cv2.rectangle(image, (x, y), (x + side, y + side), (30, 200, 240), -1)
        return image

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while self._count is None or index < self._count:
            yield Frame(index, index / self.fps, self.image(index))
            index += 1


# ---------------------------------------------------------------- choosing

def open_source(spec: str, cfg: CameraConfig) -> Source:
    """`0` camera index, a device path (/dev/video0), a stream URL (rtsp://, http://...),
    `synthetic`, a video file, a folder of images, one image, or a glob."""
    spec = str(spec)
    if is_camera_index(spec):
        if int(spec) > MAX_CAMERA_INDEX:
            raise UserError(f"camera index {spec} is out of range: webcams are numbered 0, 1, 2, ...")
        return Camera(int(spec), cfg)
    if spec == "synthetic":
        return Synthetic(cfg.width, cfg.height, cfg.fps)
    if is_stream_url(spec):
        return open_network(spec, cfg)
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]+://", spec):
        raise UserError(f"unsupported stream address {redacted(spec)}: use one of "
                        f"{', '.join(s + '://' for s in STREAM_SCHEMES)}")
    if spec.startswith("/dev/"):
        return open_device(spec, cfg)
    path = Path(spec)
    if path.is_dir():
        # Hidden files are left out as in a dataset: macOS puts a `._IMG_1.jpg` of metadata beside each photo
        # it copies to a USB stick or a network share, each of which was a warning.
        visible = [p for p in path.iterdir() if not p.name.startswith(".")]
        files = _image_files(visible)
        if not files:
            _refuse_videos(visible, f"folder {path} holds")
        _refuse_heic(visible, f"folder {path} holds", len(files))
        if not files and any(p.is_dir() for p in path.iterdir()):
            # A dataset's layout (one folder per cat): the folder is not searched below itself.
            raise UserError(f"no images directly in folder {path}, only in its sub-folders: "
                            f"give a glob such as '{path / '*' / '*.jpg'}' (quoted)")
        return PhotoFolder(files, f"folder {path}")
    if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
        return PhotoFolder([path], str(path))
    if path.suffix.lower() in HEIC_SUFFIXES and path.is_file():
        raise UserError(f"{path} is a HEIC photo, which OpenCV cannot read: {HEIC_FIX.replace('them', 'it')}")
    if globlib.has_magic(spec) and not path.exists():
        matched = globlib.glob(spec)
        files = _image_files(matched)
        _refuse_heic(matched, f"{spec} matches", len(files))
        if not files:
            _refuse_videos(matched, f"{spec} matches")
            raise UserError(f"no image files match {spec}")
        return PhotoFolder(files, spec)
    numbered = re.compile(r"%0?\d*d")  # FFmpeg's name for an image sequence (frame_%04d.png)
    if numbered.search(path.name) and not path.exists():
        raise UserError(f"no file {spec}: an image sequence is read from a glob, not a numbered name; "
                        f"give '{path.parent / numbered.sub('*', path.name)}' (quoted)")
    return VideoFile(path)
