"""Sources read from disk: a video file, and a folder, glob or single file of photos played as a slideshow."""
from __future__ import annotations

import glob as globlib
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from .. import opencv_log
from ..errors import UserError, native_lines_dropped
from ..paths import printable, utf8_name
from .base import Frame, Source, fps_or_fallback

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
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

# What the image libraries print on stderr themselves while a photo decodes: libjpeg about a truncated photo,
# libpng about a chunk it skips ("iCCP: known incorrect sRGB profile", common in photos from the web) or a
# photo it gives up on. The app says itself, in one line, when a photo is skipped.
DECODER_NOISE = r"(Premature end of JPEG file|Corrupt JPEG data|libpng (warning|error): )"


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
        self.fps = fps_or_fallback(self._cap.get(cv2.CAP_PROP_FPS))
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
            why = None
            try:
                # OpenCV logs a TIFF it cannot read in lines of its own (several for one photo).
                with native_lines_dropped(DECODER_NOISE), opencv_log.silent():
                    image = _read_photo(path)
            except OSError as e:
                image, why = None, f"cannot read it: {e.strerror or e}"
            except cv2.error:  # more pixels than OpenCV decodes (CV_IO_MAX_IMAGE_PIXELS): raised, not None
                image, why = None, "too many pixels to decode"
            if image is None:
                empty = why is None and path.is_file() and not path.stat().st_size
                why = why or ("an empty file (0 bytes)" if empty else "not a readable image")
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


def _refuse_videos(paths, where: str, shown: int = 0) -> None:
    """UserError when a folder or glob without photos holds videos (`where`: "folder X holds", "X matches"): a
    camera's folder of clips said only that no images were there, as if it were empty. With `shown` photos, a
    warning that the videos are left out (they were, in silence)."""
    videos = sorted(p for p in map(Path, paths) if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    if not videos:
        return
    said = f"{where} {len(videos)} video{'s' if len(videos) > 1 else ''}"
    if not shown:
        raise UserError(f"{said} and no photos: a folder or glob is read as photos; give one video at a time, "
                        f"e.g. --source {videos[0]}")
    print(f"warning: {said}, left out: a folder or glob is read as photos; give a video as --source {videos[0]}",
          file=sys.stderr)


def open_path(spec: str) -> Source:
    """A folder of images, one image, a glob of images, or a video file."""
    path = Path(spec)
    if path.is_dir():
        # Hidden files are left out as in a dataset: macOS puts a `._IMG_1.jpg` of metadata beside each photo
        # it copies to a USB stick or a network share, each of which was a warning.
        visible = [p for p in path.iterdir() if not p.name.startswith(".")]
        files = _image_files(visible)
        _refuse_videos(visible, f"folder {path} holds", len(files))
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
        _refuse_videos(matched, f"{spec} matches", len(files))
        _refuse_heic(matched, f"{spec} matches", len(files))
        if not files:
            raise UserError(f"no image files match {spec}")
        return PhotoFolder(files, spec)
    numbered = re.compile(r"%0?\d*d")  # FFmpeg's name for an image sequence (frame_%04d.png)
    if numbered.search(path.name) and not path.exists():
        raise UserError(f"no file {spec}: an image sequence is read from a glob, not a numbered name; "
                        f"give '{path.parent / numbered.sub('*', path.name)}' (quoted)")
    return VideoFile(path)
