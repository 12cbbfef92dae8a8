"""Frame sources on real files decoded by OpenCV: order, timing, errors, the camera's reconnects."""
from __future__ import annotations

import itertools
import os
import re
import shutil
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from clips import brightness_clip
from knyang_cam.config import CameraConfig
from knyang_cam.errors import UserError
from knyang_cam.sources import Camera, PhotoFolder, SourceLost, Synthetic, VideoFile, open_source
from knyang_cam.sources.base import fps_or_fallback


def test_video_file_every_frame_in_order_with_its_own_timing(tmp_path):
    clip = brightness_clip(tmp_path / "c.mp4", n=24, fps=20)
    with open_source(str(clip), CameraConfig()) as src:
        assert isinstance(src, VideoFile)
        assert src.fps == pytest.approx(20) and src.size == (320, 240) and not src.live
        frames = list(src)
    assert [f.index for f in frames] == list(range(24))
    assert [f.time_s for f in frames] == pytest.approx([i / 20 for i in range(24)])
    levels = [float(f.image.mean()) for f in frames]
    assert levels == pytest.approx([min(250, 10 * i) for i in range(24)], abs=6)  # mp4v is lossy
    assert levels == sorted(levels) and len(set(levels)) == 24
    assert all(f.status == "" for f in frames)


def _ffmpeg(*args: str) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (apt-get install ffmpeg): no such video to test with")
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def test_a_variable_frame_rate_video_is_timed_by_its_own_timestamps(tmp_path):
    # A phone's or screen recorder's video: five frames, nothing for 20 s (a still screen), five more.
    # The average rate is 0.48 fps, which put the frame at 20.5 s at 10.5 s.
    clip = tmp_path / "screen.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=1", "-vf", "setpts='(N/10+20*gte(N,5))/TB'",
            "-vsync", "vfr", "-c:v", "mpeg4", str(clip))
    with VideoFile(clip) as src:
        frames = list(src)
    assert [f.index for f in frames] == list(range(10))
    assert [f.time_s for f in frames] == pytest.approx([0, 0.1, 0.2, 0.3, 0.4, 20.5, 20.6, 20.7, 20.8, 20.9], abs=1e-3)


def test_a_raw_stream_without_timestamps_is_timed_by_its_frame_rate(tmp_path):
    # FFmpeg reads no time for a raw H.264 stream's frames (0 for each): they follow at its rate.
    if shutil.which("ffmpeg") and "libx264" not in subprocess.run(["ffmpeg", "-hide_banner", "-encoders"],
                                                                  capture_output=True, text=True).stdout:
        pytest.skip("this ffmpeg has no H.264 encoder (libx264)")
    clip = tmp_path / "camera.h264"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=1", "-c:v", "libx264", "-f", "h264", str(clip))
    with VideoFile(clip) as src:
        frames = list(src)
    assert len(frames) == 25
    assert [f.time_s for f in frames] == pytest.approx([i / 25 for i in range(25)])


def test_a_damaged_stretch_in_a_video_is_skipped_and_the_rest_still_read(tmp_path, capsys):
    rng = np.random.default_rng(0)
    clip = tmp_path / "c.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 15, (160, 120))
    for i in range(90):
        frame = np.full((120, 160, 3), i * 2, np.uint8)
        cv2.putText(frame, str(i), (10, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 3)
        writer.write(cv2.add(frame, rng.integers(0, 40, frame.shape, dtype=np.uint8)))
    writer.release()
    data = bytearray(clip.read_bytes())
    n = len(data)
    data[n * 4 // 10:n * 5 // 10] = rng.integers(0, 256, n * 5 // 10 - n * 4 // 10, dtype=np.uint8).tobytes()
    clip.write_bytes(bytes(data))
    with VideoFile(clip) as src:
        frames = list(src)
    indices = [f.index for f in frames]
    # Frames on both sides of the damage, each at its own place and time in the file.
    gap = next(i for i, (a, b) in enumerate(zip(indices, indices[1:])) if b != a + 1)
    assert indices[:gap + 1] == list(range(gap + 1)) and 10 < gap < 60
    assert indices[-1] == 89 and len(frames) >= 60
    assert frames[-1].time_s == pytest.approx(89 / 15)
    assert float(frames[-1].image.mean()) > float(frames[gap].image.mean()) + 20  # later, brighter frames
    assert f"skipped {90 - len(frames)} frames that did not decode" in capsys.readouterr().err


def test_a_video_whose_first_frame_is_damaged_is_read_from_its_first_good_one(tmp_path, capsys):
    clip = tmp_path / "c.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 15, (160, 120))
    rng = np.random.default_rng(0)
    for _ in range(30):
        writer.write(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    writer.release()
    data = bytearray(clip.read_bytes())
    start = data.find(b"mdat") + 4  # mp4v's moov is at the end: the first frame follows mdat's header
    data[start:start + 2000] = rng.integers(0, 256, 2000, dtype=np.uint8).tobytes()
    clip.write_bytes(bytes(data))
    with VideoFile(clip) as src:
        frames = list(src)
    assert 0 < frames[0].index < 5 and frames[-1].index == 29 and len(frames) >= 25
    assert frames[0].time_s == pytest.approx(frames[0].index / 15)
    assert f"skipped {30 - len(frames)} frames that did not decode" in capsys.readouterr().err


def test_a_video_cut_short_is_read_to_its_end_with_a_warning(tmp_path, capsys):
    rng = np.random.default_rng(0)
    whole, cut = tmp_path / "whole.avi", tmp_path / "cut.avi"
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"MJPG"), 30, (160, 120))
    for _ in range(60):
        writer.write(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    writer.release()
    cut.write_bytes(whole.read_bytes()[:whole.stat().st_size // 2])  # AVI's header still says 60 frames
    with VideoFile(whole) as src:
        assert len(list(src)) == 60
    assert "cut short" not in capsys.readouterr().err
    with VideoFile(cut) as src:
        n = len(list(src))
    assert 20 < n < 40
    assert f"ended after {n} of the 60 frames its container announces" in capsys.readouterr().err


def test_missing_and_non_video_files_name_the_path(tmp_path):
    with pytest.raises(UserError, match="not found: .*nope.mp4"):
        open_source(str(tmp_path / "nope.mp4"), CameraConfig())
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    with pytest.raises(UserError, match="junk.mp4"):
        open_source(str(junk), CameraConfig())


def test_a_text_file_is_not_read_as_a_video_of_its_text(tmp_path):
    # FFmpeg reads these as a video of the text drawn in a console font: frames of "cats", exit status 0.
    for name in ("files.txt", "README.NFO"):
        text = tmp_path / name
        text.write_text("photos/a.jpg\nphotos/b.jpg\n" * 200)
        with pytest.raises(UserError, match=f"{name} is a text file, not a video"):
            open_source(str(text), CameraConfig())


def test_an_image_sequence_named_as_ffmpeg_does_names_the_glob_that_reads_it(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"frame_{i:04d}.png"), np.full((40, 40, 3), 90, np.uint8))
    with pytest.raises(UserError, match=r"image sequence .*give '.*/frame_\*\.png' \(quoted\)"):
        open_source(str(tmp_path / "frame_%04d.png"), CameraConfig())
    with open_source(str(tmp_path / "frame_*.png"), CameraConfig()) as src:
        assert len(list(src)) == 3


def test_folder_sorted_skips_bad_files_and_rejects_empty(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, level in (("b.png", 200), ("a.jpg", 50), ("c.PNG", 120)):
        cv2.imwrite(str(folder / name), np.full((60, 80, 3), level, np.uint8))
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    (folder / "copying.jpg").write_bytes(b"")  # a copy that never finished
    (folder / "notes.txt").write_text("hello")
    with open_source(str(folder), CameraConfig()) as src:
        frames = list(src)
    assert [round(float(f.image.mean()), -1) for f in frames] == [50, 200, 120]  # a.jpg, b.png, c.PNG
    assert [f.index for f in frames] == [0, 1, 2]
    assert capsys.readouterr().err.splitlines() == [
        f"warning: skipping {folder / 'broken.jpg'}: not a readable image",
        f"warning: skipping {folder / 'copying.jpg'}: an empty file (0 bytes)"]

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(UserError, match="empty"):
        open_source(str(empty), CameraConfig())


def test_heic_photos_are_named_with_what_to_do(tmp_path, capsys):
    # A phone's HEIC bytes are not needed: OpenCV reads no HEIC at all, so the suffix decides.
    phone = tmp_path / "phone"
    phone.mkdir()
    for name in ("IMG_0001.HEIC", "IMG_0002.heic"):
        (phone / name).write_bytes(b"\x00\x00\x00\x18ftypheic")
    for spec, said in ((str(phone), f"folder {phone} holds 2 HEIC photos"),
                       (str(phone / "*.HEIC"), "matches 1 HEIC photo,"),
                       (str(phone / "IMG_0001.HEIC"), "IMG_0001.HEIC is a HEIC photo")):
        with pytest.raises(UserError, match="save (them|it) as JPEG") as e:
            open_source(spec, CameraConfig())
        assert said in str(e.value)
    cv2.imwrite(str(phone / "IMG_0003.jpg"), np.full((40, 40, 3), 90, np.uint8))
    capsys.readouterr()
    with open_source(str(phone), CameraConfig()) as src:  # the photos it can read are shown, the rest named
        assert len(list(src)) == 1
    assert f"folder {phone} holds 2 HEIC photos, which OpenCV cannot read; showing the other 1" in \
        capsys.readouterr().err


def test_a_folder_of_cat_folders_names_the_glob_that_reads_it(tmp_path):
    # The layout train.evaluate --data takes: the folder itself holds no image.
    for cat in ("Eve", "Leo"):
        (tmp_path / "held" / cat).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "held" / cat / "1.jpg"), np.full((40, 40, 3), 90, np.uint8))
    with pytest.raises(UserError, match=r"only in its sub-folders: give a glob such as '.*held/\*/\*\.jpg'"):
        open_source(str(tmp_path / "held"), CameraConfig())
    with open_source(str(tmp_path / "held" / "*" / "*.jpg"), CameraConfig()) as src:
        assert len(list(src)) == 2


def test_glob_and_single_image(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"cat{i}.png"), np.full((40, 40, 3), 60 * i, np.uint8))
    cv2.imwrite(str(tmp_path / "dog.png"), np.zeros((40, 40, 3), np.uint8))
    with open_source(str(tmp_path / "cat*.png"), CameraConfig()) as src:
        assert len(list(src)) == 3
    with open_source(str(tmp_path / "cat1.png"), CameraConfig()) as src:
        assert isinstance(src, PhotoFolder) and len(list(src)) == 1
    with pytest.raises(UserError, match="no image files match"):
        open_source(str(tmp_path / "bird*.png"), CameraConfig())


def test_a_named_pipe_as_the_source_is_not_said_to_be_missing(tmp_path):
    os.mkfifo(tmp_path / "feed.mp4")
    with pytest.raises(UserError, match=r"feed\.mp4 is a pipe or a device, not a video file: save the video to a file"):
        open_source(str(tmp_path / "feed.mp4"), CameraConfig())


def test_a_folder_or_glob_of_videos_says_a_video_is_given_on_its_own(tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("b.mp4", "a.MOV"):
        (clips / name).write_bytes(b"a camera's clip")
    for spec, where in ((clips, f"folder {clips} holds"), (clips / "*", f"{clips / '*'} matches")):
        with pytest.raises(UserError, match=rf"^{re.escape(where)} 2 videos and no photos: .* give one video "
                                            rf"at a time, e.g. --source {re.escape(str(clips / 'a.MOV'))}$"):
            open_source(str(spec), CameraConfig())


def test_videos_beside_photos_are_named_as_left_out(tmp_path, capsys):
    # A folder of a camera's photos and clips showed the photos alone, without a word about the clips.
    (tmp_path / "clip.mp4").write_bytes(b"a camera's clip")
    cv2.imwrite(str(tmp_path / "1.jpg"), np.full((40, 40, 3), 90, np.uint8))
    for spec, where in ((tmp_path, f"folder {tmp_path} holds"), (tmp_path / "*", f"{tmp_path / '*'} matches")):
        capsys.readouterr()
        with open_source(str(spec), CameraConfig()) as src:
            assert len(list(src)) == 1
        assert f"warning: {where} 1 video, left out: a folder or glob is read as photos; give a video as --source " \
               f"{tmp_path / 'clip.mp4'}" in capsys.readouterr().err


def test_synthetic_is_deterministic_and_counted():
    a, b = list(Synthetic(160, 120, count=5)), list(Synthetic(160, 120, count=5))
    assert len(a) == 5 and a[4].image.shape == (120, 160, 3)
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b))
    assert not np.array_equal(a[0].image, a[4].image)


def test_camera_that_reports_no_rate_plays_at_30():
    assert fps_or_fallback(0) == 30.0 and fps_or_fallback(float("nan")) == 30.0
    assert fps_or_fallback(25.0) == 25.0


def test_missing_camera_names_index_and_backends():
    with pytest.raises(UserError) as e:
        open_source("7", CameraConfig())
    assert "camera 7" in str(e.value) and "backends tried" in str(e.value)


def _file_camera(path, fail_after_opens: int):
    """An opener for Camera backed by a real capture of a video file: it really runs dry at the
    end of the file, and reopening succeeds `fail_after_opens - 1` times."""
    opens = []

    def opener():
        opens.append(1)
        if len(opens) > fail_after_opens:
            raise UserError("camera gone")
        cap = cv2.VideoCapture(str(path))
        ok, first = cap.read()
        assert ok
        return cap, first

    return opener, opens


def test_camera_keeps_newest_frame_reconnects_then_ends(tmp_path):
    clip = brightness_clip(tmp_path / "c.mp4", n=24)
    cfg = CameraConfig(reconnect_attempts=2, reconnect_delay_s=0.01)
    opener, opens = _file_camera(clip, fail_after_opens=2)
    threads_before = set(threading.enumerate())
    cam = Camera(0, cfg, opener=opener)
    assert cam.live and cam.size == (320, 240)
    assert set(threading.enumerate()) - threads_before, "a camera reads on its own thread"
    got = []
    with pytest.raises(SourceLost, match="2 reconnect attempts"):
        for frame in cam:
            got.append(frame)
            time.sleep(0.02)  # a slow consumer: the reader thread must drop, not queue, frames
    fresh = [f for f in got if not f.status and not f.waiting]
    # One status per wait, however many frames it took: a loaded machine's slower reopen hands out more.
    statuses = [status for status, _ in itertools.groupby(f.status for f in got) if status]
    assert [f.index for f in fresh] == list(range(len(fresh)))
    # One reopen succeeded (the file plays again), then both attempts of the second loss failed.
    assert len(opens) == 4
    assert statuses == ["camera 0 lost: reconnecting (1/2)", "camera 0 lost: reconnecting (1/2)",
                        "camera 0 lost: reconnecting (2/2)"]
    # Newest-frame reading skipped frames rather than building up a backlog.
    assert len(fresh) < 2 * 24
    assert set(threading.enumerate()) <= threads_before, "the reader thread outlived the camera"


def test_a_camera_waiting_to_reconnect_keeps_handing_the_app_frames(tmp_path):
    # The app notices Ctrl-C, keys and a closed window between two frames: a long reconnect delay
    # must not keep it from them (it used to sleep the whole delay).
    clip = brightness_clip(tmp_path / "c.mp4", n=6)
    cam = Camera(0, CameraConfig(reconnect_attempts=1, reconnect_delay_s=5.0), opener=_file_camera(clip, 1)[0])
    waiting = []
    for frame in cam:
        if frame.status:
            waiting.append(time.monotonic())
            if len(waiting) == 3:
                break  # what the app does on Ctrl-C
    cam.close()
    assert waiting[-1] - waiting[0] < 1.0


def test_a_camera_reopening_keeps_handing_the_app_frames(tmp_path):
    # A stream's reopen blocks in OpenCV for up to its 5 s open timeout: it runs on a thread, so the
    # app still gets a frame (and notices Ctrl-C) every WAIT_STEP_S meanwhile.
    clip = brightness_clip(tmp_path / "c.mp4", n=6)
    first, opens = _file_camera(clip, 1)

    def slow_opener():
        if opens:
            time.sleep(1.5)  # the open that times out
        return first()

    cam = Camera(0, CameraConfig(reconnect_attempts=1, reconnect_delay_s=0.01), opener=slow_opener)
    waiting = []
    with pytest.raises(SourceLost):
        for frame in cam:
            if frame.status:
                waiting.append(time.monotonic())
    assert len(opens) == 2
    assert len(waiting) >= 10 and max(np.diff(waiting)) < 0.5, np.diff(waiting)


class _StalledCapture:
    """A capture that gives one frame, then blocks in read() like a stream whose server froze."""

    def __init__(self, image):
        self._image, self._released = image, threading.Event()
        self.reading = self.released_while_reading = False

    def get(self, prop):
        return 15.0

    def read(self):
        self.reading = True
        self._released.wait(timeout=3.0)  # FFmpeg's read timeout
        self.reading = False
        return False, None

    def release(self):
        self.released_while_reading |= self.reading  # FFmpeg would free what the read still uses
        self._released.set()


def test_a_stalled_camera_keeps_handing_the_app_frames_before_it_is_taken_for_lost():
    # A frozen stream blocks OpenCV's read for up to its 5 s timeout, and a camera is not taken for lost
    # before stall_s: the app must still get a frame every WAIT_STEP_S meanwhile, or its window, keys and
    # Ctrl-C freeze for seconds (q took 4.6 s to quit a stalled HTTP stream).
    image = np.full((240, 320, 3), 90, np.uint8)
    cam = Camera(0, CameraConfig(reconnect_attempts=1, reconnect_delay_s=0.01),
                 opener=lambda: (_StalledCapture(image), image))
    got, started = [], time.monotonic()
    for frame in cam:
        got.append((time.monotonic(), frame))
        if time.monotonic() - started > 1.0:
            break  # what the app does on Ctrl-C
    cam.close()
    assert not got[0][1].waiting and got[0][1].status == ""
    waiting = [(t, f) for t, f in got[1:]]
    assert waiting and all(f.waiting and f.status == "" and f.image is image and f.index == 1 for _, f in waiting)
    times = [started] + [t for t, _ in got]
    assert max(np.diff(times)) < 0.5, np.diff(times)


def test_closing_a_stalled_camera_neither_waits_for_its_read_nor_releases_under_it():
    # Ctrl-C or q during a stall: close() used to join the reader for stall_s (the app took 4.2 s to end
    # on a SIGSTOPped stream), then release the capture while read() still ran in it.
    image = np.full((240, 320, 3), 90, np.uint8)
    cap = _StalledCapture(image)
    cam = Camera(0, CameraConfig(), opener=lambda: (cap, image))
    frames = iter(cam)
    next(frames)
    while not cap.reading:
        time.sleep(0.01)
    t0 = time.monotonic()
    cam.close()
    assert time.monotonic() - t0 < 1.0
    deadline = time.monotonic() + 5
    while cap.reading and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)
    assert cap._released.is_set() and not cap.released_while_reading


def test_a_camera_closed_while_reopening_releases_what_opens_later(tmp_path):
    clip = brightness_clip(tmp_path / "c.mp4", n=6)
    first, opens = _file_camera(clip, 2)
    opened = []

    def slow_opener():
        if opens:
            time.sleep(0.5)
        cap, image = first()
        opened.append(cap)
        return cap, image

    cam = Camera(0, CameraConfig(reconnect_attempts=1, reconnect_delay_s=0.01), opener=slow_opener)
    statuses = 0
    for frame in cam:
        statuses += bool(frame.status)
        if statuses == 3:
            break  # what the app does on Ctrl-C, while the reopen runs
    cam.close()
    deadline = time.monotonic() + 5
    while len(opened) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)
    assert len(opened) == 2 and not opened[1].isOpened(), "the late capture must be released"


@pytest.mark.parametrize("quiet", [False, True])
def test_quiet_leaves_opencv_nothing_but_errors_to_print(quiet):
    # A stalled stream makes OpenCV's reader thread warn on stderr once per timeout; a failed
    # imread is the same kind of warning, raised here in a child process so the real stderr is seen.
    code = ("from knyang_cam import opencv_log\n"
            f"if {quiet}: opencv_log.quiet()\n"
            "import cv2; cv2.imread('/nonexistent/knyang.png')")
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stderr
    assert ("WARN" in err) is not quiet


def test_a_photo_of_too_many_pixels_is_skipped_like_a_broken_one(tmp_path, capsys):
    # A 100-byte PNG whose header claims 40000x40000 pixels: OpenCV raises (CV_IO_MAX_IMAGE_PIXELS)
    # where it returns None for other undecodable files; it must not end the run with a traceback.
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b""))
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.full((40, 40, 3), 50, np.uint8))
    (folder / "b.png").write_bytes(bomb)
    cv2.imwrite(str(folder / "c.png"), np.full((40, 40, 3), 150, np.uint8))
    with open_source(str(folder), CameraConfig()) as src:
        frames = list(src)
    assert [round(float(f.image.mean()), -1) for f in frames] == [50, 150]
    assert "b.png" in capsys.readouterr().err
    (tmp_path / "only.png").write_bytes(bomb)
    with pytest.raises(UserError, match="no readable images"):
        open_source(str(tmp_path / "only.png"), CameraConfig())


def _latin1_name(folder, name: bytes):
    """`folder / name` for a name that is not UTF-8 (as from an old Windows share), or a skip where the file
    system refuses such names."""
    path = Path(os.fsdecode(os.path.join(os.fsencode(folder), name)))
    try:
        path.touch()
    except OSError:
        pytest.skip("this file system takes only UTF-8 names")
    return path


def test_names_that_are_not_utf8_are_read_or_refused_never_a_crash(tmp_path):
    # cv2.imread and cv2.VideoCapture crash (SIGSEGV) on such a name: a folder with one such photo ended the
    # run mid-way, its log and video never moved into place. In a child, so that a crash fails only this test.
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, level in ((b"a.png", 50), (b"caf\xe9.png", 120), (b"z.png", 200)):
        path = _latin1_name(photos, name)
        cv2.imencode(".png", np.full((40, 60, 3), level, np.uint8))[1].tofile(path)
    clip = _latin1_name(tmp_path, b"vid\xe9.mp4")
    brightness_clip(tmp_path / "ok.mp4", n=3).replace(clip)
    script = f"""
import os, pytest
from knyang_cam.config import CameraConfig
from knyang_cam.errors import UserError
from knyang_cam.paths import check_app
from knyang_cam.sources import open_source
with open_source({str(photos)!r}, CameraConfig()) as src:
    print([round(float(f.image.mean())) for f in src])
for what in (lambda: open_source({str(clip)!r}, CameraConfig()),
             lambda: check_app([], output=os.fsdecode(os.fsencode({str(tmp_path)!r}) + b"/out\\xe9.mp4"))):
    with pytest.raises(UserError) as e:
        what()
    print(e.value)
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    levels, video, output = run.stdout.splitlines()
    assert levels == "[50, 120, 200]"
    assert "vid\\xe9.mp4 as a video: its name is not valid UTF-8" in video
    assert "out\\xe9.mp4 is not a valid UTF-8 name" in output


def test_a_network_in_a_folder_whose_name_is_not_utf8_loads(tmp_path):
    from knyang_cam import bundled, litert

    folder = _latin1_name(tmp_path, b"mod\xe9")
    folder.unlink()
    folder.mkdir()
    shutil.copy(bundled.path(bundled.FINDER_DIR) / "finder.tflite", folder / "finder.tflite")
    assert litert.interpreter(folder / "finder.tflite", 1).get_input_details()


def test_image_libraries_own_lines_stay_off_stderr(tmp_path, capfd):
    # libpng warns on stderr itself about a chunk it skips (a photo from the web with an odd colour profile)
    # and OpenCV logs a TIFF it cannot read in several lines: each photo is one line of ours, or none.
    png = cv2.imencode(".png", np.full((40, 60, 3), 90, np.uint8))[1].tobytes()
    idat = png.find(b"IDAT") - 4
    body = b"iCCP" + b"bogus\0\0" + zlib.compress(b"\0" * 200)
    iccp = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    (tmp_path / "a-profile.png").write_bytes(png[:idat] + iccp + png[idat:])
    tiff = cv2.imencode(".tif", np.full((200, 300, 3), 90, np.uint8))[1].tobytes()
    (tmp_path / "b-truncated.tif").write_bytes(tiff[:len(tiff) // 3])
    with open_source(str(tmp_path), CameraConfig()) as src:
        assert len(list(src)) == 1
    err = capfd.readouterr().err
    assert err.splitlines() == [f"warning: skipping {tmp_path / 'b-truncated.tif'}: not a readable image"]


def test_a_folder_leaves_out_hidden_files(tmp_path, capsys):
    # What macOS writes beside each photo it copies to a USB stick: `._NAME`, metadata, not a photo.
    cv2.imwrite(str(tmp_path / "IMG_1.jpg"), np.full((40, 60, 3), 90, np.uint8))
    (tmp_path / "._IMG_1.jpg").write_bytes(b"\0\5\26\7" + bytes(200))
    with open_source(str(tmp_path), CameraConfig()) as src:
        assert len(list(src)) == 1
    assert capsys.readouterr().err == ""
