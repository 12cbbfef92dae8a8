"""Frame sources: a webcam, a network camera, a video file, a folder or glob of images, or generated frames.

Every source has the same shape (after OpenCV's samples/video.py): it is opened,
and fails, up front with a UserError naming what it could not open; then it is
iterated for `Frame`s and closed (it is a context manager). `fps` and `size` are
known once it is open, so sinks can be set up before the first frame.
"""
from __future__ import annotations

import re

from ..config import CameraConfig
from ..errors import UserError
from ..paths import is_camera_index
from .base import Frame, Source, SourceLost
from .camera import Camera, open_device
from .files import IMAGE_SUFFIXES, VIDEO_SUFFIXES, PhotoFolder, VideoFile, open_path
from .network import SNAPSHOT_EVERY_S, STREAM_SCHEMES, Recording, Stream, is_stream_url, open_network, redacted
from .synthetic import Synthetic

__all__ = ["IMAGE_SUFFIXES", "SNAPSHOT_EVERY_S", "VIDEO_SUFFIXES", "Camera", "Frame", "PhotoFolder",
           "Recording", "Source", "SourceLost", "Stream", "Synthetic", "VideoFile", "is_stream_url", "open_source",
           "redacted"]

MAX_CAMERA_INDEX = 255  # Linux numbers video devices 0-255; a larger index is a typo, not a camera


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
    return open_path(spec)
