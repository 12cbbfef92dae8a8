"""Network cameras: a live stream (RTSP, HTTP, ...) read like a webcam, a still-image URL fetched again and again,
or a recording served over the network read like a file."""
from __future__ import annotations

import re
import time

import cv2
import numpy as np

from .. import opencv_log
from ..config import CameraConfig
from ..errors import UserError
from ..stream_answer import http_answer, unreachable
from .camera import WAIT_STEP_S, Camera, Opening
from .files import VideoFile

# Network cameras: URL schemes FFmpeg reads a live stream from.
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
# FFmpeg waits this long for a stream to open, or for its next packet, before giving up: long
# enough for a camera on Wi-Fi, short enough that a wrong URL fails while the user watches.
STREAM_TIMEOUT_S = 5.0


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
    opening = Opening(lambda: open_stream(url))
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
