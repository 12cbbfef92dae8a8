"""The video sink on frame rates its mp4v writer does not take as they are."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clips import read_frames
from knyang_cam.errors import UserError
from knyang_cam.sinks import MAX_VIDEO_SIDE, MAX_WRITER_FPS, MIN_WRITER_FPS, JsonlLog, VideoSink, writer_fps


@pytest.mark.parametrize("fps, warned", [(0.001, True), (90000.0, True), (7000.123, False), (29.97, False)])
def test_a_video_is_written_at_any_source_frame_rate(tmp_path, capsys, fps, warned):
    # A time-lapse at one frame in 1000 s, or a file that reports its time base (90000) as its rate, made the
    # writer refuse to open: --output was refused, naming the frame size.
    out = tmp_path / "o.mp4"
    with VideoSink(out, fps, (64, 48)) as sink:
        for level in (40, 120, 200):
            sink.write(np.full((48, 64, 3), level, np.uint8))
    assert len(read_frames(out)) == 3
    err = capsys.readouterr().err
    assert (f"not the source's {fps:g}: written at {writer_fps(fps):g}" in err) == warned
    assert err.count("\n") == warned


def test_writer_rate_is_the_nearest_it_takes():
    assert writer_fps(0.001) == MIN_WRITER_FPS and writer_fps(1e6) == MAX_WRITER_FPS
    assert writer_fps(29.97) == 29.97 and writer_fps(24000 / 1001) == 23.976
    assert writer_fps(7000.123) == 7000.0 and writer_fps(6553.4) == 6553.4 and writer_fps(6553.55) == 6554.0


def test_an_unwritable_folder_names_the_file_the_user_gave():
    # `--log run.jsonl` in a read-only folder said "cannot write --log .": the user typed a file name.
    named = r"^cannot write --log /proc/knyang-cam/run\.jsonl \(its folder /proc/knyang-cam\): "
    with pytest.raises(UserError, match=named):
        JsonlLog(Path("/proc/knyang-cam/run.jsonl"))


def test_frames_wider_or_taller_than_the_codec_takes_are_refused_saying_why(tmp_path):
    # A 9000x200 panorama was 'OpenCV cannot open a .mp4 writer for 9000x200 frames', no reason or way out.
    for size in ((MAX_VIDEO_SIDE + 1, 200), (64, MAX_VIDEO_SIDE + 1)):
        refused = (rf"^the frames are {size[0]}x{size[1]} pixels, too large to write as a video "
                   rf"\(at most {MAX_VIDEO_SIDE} pixels a side\): leave out --output$")
        with pytest.raises(UserError, match=refused):
            VideoSink(tmp_path / "o.mp4", 30, size)
    assert not list(tmp_path.iterdir())
    with VideoSink(tmp_path / "o.mp4", 30, (MAX_VIDEO_SIDE, 16)) as sink:  # the largest the codec takes
        sink.write(np.zeros((16, MAX_VIDEO_SIDE, 3), np.uint8))
    assert len(read_frames(tmp_path / "o.mp4")) == 1
