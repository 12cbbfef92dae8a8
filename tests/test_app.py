"""The loop end to end: real clips decoded by OpenCV, the real LiteRT classifier on the tiny model,
every key through a scripted key provider, a camera that dies, and signals to a real process."""
from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from clips import noise_frame, read_frames, write_clip
from knyang_cam import app, config, model_dir, overlay
from knyang_cam.classify import load_classifier
from knyang_cam.config import CameraConfig
from knyang_cam.cuts import CutDetector
from knyang_cam.dataset import Saver
from knyang_cam.errors import UserError
from knyang_cam.keys import Action, Controls, handle_key, no_keys, scripted
from knyang_cam.regions import center_finder, crops, surest, views_of, zoom_factors
from knyang_cam.results import UNKNOWN, Prediction, Region
from knyang_cam.smoothing import Smoother
from knyang_cam.sources import Camera, Frame, VideoFile, open_source
from knyang_cam.stats import Stats

pytestmark = pytest.mark.slow  # the loop runs a Keras-built model (tiny_model_dir), some tests in a subprocess

ROOT = Path(__file__).resolve().parent.parent
CAT_FACE = Path(__file__).parent / "data" / "cat_face.jpg"
LOG_KEYS = {"frame", "time_s", "regions", "timing_ms"}
REGION_KEYS = {"box", "source", "label", "confidence", "probs"}


@pytest.fixture
def cfg(tmp_path):
    base = config.load()
    # The centre square: the synthetic frames and tiny models here have no cat for the finder to find.
    return dataclasses.replace(
        base,
        app=dataclasses.replace(base.app, dataset_root=str(tmp_path / "data"),
                                snapshots_dir=str(tmp_path / "snaps")),
        regions=dataclasses.replace(base.regions, crop="center"),
        overlay=dataclasses.replace(base.overlay, toast_s=60.0))


@pytest.fixture
def model(tiny_model_dir):
    return model_dir.read(tiny_model_dir)


def noise_clip(path, n=30, fps=20.0):
    return write_clip(path, [noise_frame(i) for i in range(n)], fps)


def cat_clip(path, n=40, fps=20.0):
    """The cat photo held still: a real face for the detector in every frame (the cascade is
    fussy enough that a few pixels of motion can lose it for a frame)."""
    return write_clip(path, [cv2.imread(str(CAT_FACE))] * n, fps)


def read_log(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def run(cfg, source, model, **kw):
    out = io.StringIO()
    status = app.run(cfg, source, model, out=out, **kw)
    return status, out.getvalue()


def predictions_of(record, classes) -> list[Prediction]:
    return [Prediction(Region(tuple(r["box"]), r["source"]), r["label"], r["confidence"],
                       tuple(r["probs"][c] for c in classes)) for r in record["regions"]]


def test_headless_log_matches_the_pipeline_and_video_decodes(tmp_path, cfg, model):
    clip = noise_clip(tmp_path / "in.mp4", n=30, fps=20)
    status, summary = run(cfg, VideoFile(clip), model, output=str(tmp_path / "out.mp4"),
                          log=str(tmp_path / "log.jsonl"))
    assert status == app.EXIT_OK
    records = read_log(tmp_path / "log.jsonl")
    assert [r["frame"] for r in records] == list(range(30))
    # The same frames through the classifier and smoother by hand give the logged numbers.
    classifier = load_classifier(model)
    factors = zoom_factors(cfg.regions.zooms, cfg.regions.zoom_step)
    smoother = Smoother(model.classes, cfg.smoothing.alpha, cfg.smoothing.iou_match,
                        cfg.smoothing.forget_after, model.unknown_threshold, cfg.smoothing.hysteresis,
                        cfg.smoothing.hold, recent=len(factors))
    cuts = CutDetector(cfg.smoothing.cut_threshold)
    for record, frame in zip(records, read_frames(clip)):
        assert set(record) == LOG_KEYS
        assert record["time_s"] == pytest.approx(record["frame"] / 20, abs=1e-4)
        assert set(record["timing_ms"]) == {"capture", "detect", "infer", "draw"}
        assert all(v >= 0 for v in record["timing_ms"].values())
        (region,) = record["regions"]
        assert set(region) == REGION_KEYS
        assert region["box"] == [40, 0, 240, 240] and region["source"] == "center"
        if cuts(frame):
            smoother.reset()
        regions = center_finder(frame)
        # The app's views of the region: all of them when it is new, then one a frame, in turn.
        fresh = [not t for t in smoother.tracked(regions)]
        views, owners = views_of(regions, factors, fresh, record["frame"], frame.shape[1], frame.shape[0])
        probs = surest(classifier.predict(crops(frame, views, model.input_size)), owners, 1)
        (expected,) = smoother.update(regions, probs)
        assert region["label"] == expected.label
        assert list(region["probs"]) == list(model.classes)
        assert list(region["probs"].values()) == pytest.approx(expected.probs, abs=2e-4)
        assert sum(region["probs"].values()) == pytest.approx(1.0, abs=1e-3)
        if region["label"] != UNKNOWN:
            assert region["confidence"] == region["probs"][region["label"]]
    video = read_frames(tmp_path / "out.mp4")
    assert len(video) == 30 and video[0].shape == (240, 320, 3)
    assert cv2.VideoCapture(str(tmp_path / "out.mp4")).get(cv2.CAP_PROP_FPS) == pytest.approx(20)
    assert "30 frames" in summary and "mean ms per frame: capture" in summary
    # Every frame showed a label for 1/20 s: the per-class times add up to the clip's length.
    shown = dict(item.rsplit(" ", 2)[:2] for item in summary.split("on screen: ")[1].split(", "))
    assert sum(float(v) for v in shown.values()) == pytest.approx(1.5, abs=0.15)


def test_the_summary_counts_the_first_frame_s_work_in_the_run_s_time():
    # One photo ran "1 frames in 0.00 s (1841.7 FPS)": the clock started after its 48 ms of detection and inference.
    stats = Stats()
    timing = {"capture": 1.0, "detect": 20.0, "infer": 25.0, "draw": 2.0, "output": 2.0}  # 50 ms
    stats.add(Frame(0, 0.0, np.zeros((4, 4, 3), np.uint8)), [], timing, 30.0)
    summary = stats.summary("end of input", ("A",))
    assert float(re.search(r"\(([\d.]+) FPS\)", summary).group(1)) <= 1000 / 50
    assert summary.startswith("knyang-cam: 1 frame in ")


def test_max_frames_and_realtime_pacing(tmp_path, cfg, model):
    clip = noise_clip(tmp_path / "in.mp4", n=30, fps=20)
    status, summary = run(cfg, VideoFile(clip), model, log=str(tmp_path / "a.jsonl"), max_frames=10)
    assert status == 0 and len(read_log(tmp_path / "a.jsonl")) == 10
    assert "stopped after --max-frames 10" in summary
    realtime = config.override(cfg, **{"app.realtime": True})
    t0 = time.perf_counter()
    run(realtime, VideoFile(clip), model, max_frames=20)
    assert time.perf_counter() - t0 >= 0.9  # 20 frames at the file's 20 FPS take a second


def video_diff(video_frame, raw_frame, box) -> float:
    x, y, w, h = box
    return float(np.abs(video_frame[y:y + h, x:x + w].astype(int) - raw_frame[y:y + h, x:x + w]).mean())


def test_every_key(tmp_path, cfg, model):
    clip = cat_clip(tmp_path / "cat.mp4", n=40)
    raw = read_frames(clip)
    # One key per processed frame; while paused, keys keep being read without new frames.
    keys = ["s", "1", "2", "u", -1, "b", -1, "h", -1, "c", -1, -1, -1, " ", "b", -1, -1, " ", -1, -1, "q"]
    # record_hud: the video stands in for the window, whose HUD shows the keys' effects.
    status, summary = run(cfg, VideoFile(clip), model, keys=scripted(keys), record_hud=True,
                          output=str(tmp_path / "out.mp4"), log=str(tmp_path / "log.jsonl"))
    assert status == 0 and "quit" in summary
    records = read_log(tmp_path / "log.jsonl")
    # 21 keys, 4 of them read while paused (after frame 13): 17 frames, each logged once.
    assert [r["frame"] for r in records] == list(range(17))
    data, snaps = tmp_path / "data", tmp_path / "snaps"
    assert len(list(snaps.glob("*.jpg"))) == 1
    assert cv2.imread(str(next(snaps.glob("*.jpg")))).shape == (240, 320, 3)  # the whole frame
    for folder in (data / "Train" / "Alpha", data / "Train" / "Beta", data / "unlabeled"):
        (saved,) = folder.glob("*.jpg")
        assert cv2.imread(str(saved)).shape == (240, 240, 3)  # the centre crop at frame resolution
    assert not (data / "Train" / "Gamma").exists()
    # `c`: centre crops until the key, then the detector finds the cat's face.
    sources = [r["regions"][0]["source"] for r in records]
    assert sources[:10] == ["center"] * 10 and set(sources[10:]) == {"detect"}
    # `b` hid the bars from frame 6 (and showed them again while paused, unseen); `h` showed help.
    video = read_frames(tmp_path / "out.mp4")
    assert len(video) == 17
    # The recording with the HUD is the window's picture: the bars in the strip beside the frame.
    assert video[0].shape == (240, overlay.shown_size((320, 240))[0], 3)
    bars = overlay.bar_tracks(raw[0].shape, model.classes)
    bar_area = (bars[0][0], bars[0][1], bars[0][2], bars[-1][1] + bars[-1][3] - bars[0][1])
    empty_strip = np.full_like(video[0], overlay.SIDE_COLOUR)
    assert video_diff(video[4], empty_strip, bar_area) > 25
    assert video_diff(video[6], empty_strip, bar_area) < 10
    middle = (120, 100, 80, 40)
    assert video_diff(video[7], raw[7], middle) < video_diff(video[8], raw[8], middle) - 20


def test_saving_into_an_unwritable_folder_says_so_and_keeps_going(tmp_path, cfg, model):
    # Tests run as root, where a read-only chmod does not stop writes; a dataset root that is
    # an existing regular file makes the save fail with a real OSError instead.
    blocker = tmp_path / "data"
    blocker.write_text("not a folder")
    clip = noise_clip(tmp_path / "in.mp4", n=30)
    status, _ = run(cfg, VideoFile(clip), model, keys=scripted([-1, "1"]), record_hud=True,
                    output=str(tmp_path / "out.mp4"), log=str(tmp_path / "log.jsonl"))
    assert status == 0 and len(read_log(tmp_path / "log.jsonl")) == 30
    assert blocker.read_text() == "not a folder"
    # The last frame shows the error toast: its pixels match the overlay drawn with that message.
    message = f"not saved: Not a directory ({blocker / 'Train' / 'Alpha'})"
    last_raw, last_video = read_frames(clip)[-1], read_frames(tmp_path / "out.mp4")[-1]
    predictions = predictions_of(read_log(tmp_path / "log.jsonl")[-1], model.classes)
    with_toast = overlay.draw(last_raw, predictions, model.classes, overlay.Hud(toast=message))
    without = overlay.draw(last_raw, predictions, model.classes, overlay.Hud())
    toast = np.abs(with_toast.astype(int) - without).max(axis=2) > 40
    assert toast.sum() > 500

    def diff(a):
        return float(np.abs(last_video.astype(int) - a)[toast].mean())

    # Measured: about 8 with this message (mp4v noise), 29 with another message, 86 with none.
    assert diff(with_toast) < 15 and diff(without) > 50


def test_class_names_with_path_characters_cannot_escape(tmp_path, cfg, tiny_model_dir):
    bad = tmp_path / "models" / "bad"
    shutil.copytree(tiny_model_dir, bad)
    meta = json.loads((bad / "model.json").read_text())
    meta["classes"] = ["../../escape", "a/b", "ok"]
    (bad / "model.json").write_text(json.dumps(meta))
    clip = noise_clip(tmp_path / "in.mp4", n=10)
    before = {p for p in tmp_path.rglob("*")}
    status, _ = run(cfg, VideoFile(clip), model_dir.read(bad), keys=scripted(["1", "2", "3"]))
    assert status == 0
    new = {p for p in tmp_path.rglob("*") if p.is_file()} - before
    assert [p.relative_to(tmp_path / "data").parts[:2] for p in new] == [("Train", "ok")]


def test_camera_lost_ends_cleanly_with_its_own_status(tmp_path, cfg, model):
    clip = noise_clip(tmp_path / "cam.mp4", n=25)
    opens = []

    def opener():
        """A real capture that runs dry after the clip's frames; it cannot be reopened."""
        opens.append(1)
        if len(opens) > 1:
            raise UserError("camera gone")
        cap = cv2.VideoCapture(str(clip))
        return cap, cap.read()[1]

    camera = Camera(0, CameraConfig(reconnect_attempts=2, reconnect_delay_s=0.01), opener=opener)
    status, summary = run(cfg, camera, model, output=str(tmp_path / "out.mp4"),
                          log=str(tmp_path / "log.jsonl"))
    assert status == app.EXIT_CAMERA_LOST == 3
    assert len(opens) == 3  # the first open and two reconnect attempts
    records = read_log(tmp_path / "log.jsonl")
    assert 1 <= len(records) <= 25
    assert [r["frame"] for r in records] == list(range(len(records)))
    assert len(read_frames(tmp_path / "out.mp4")) == len(records)
    assert "camera 0 stopped delivering frames (2 reconnect attempts failed)" in summary
    assert f"{len(records)} frame{'s' * (len(records) != 1)} in " in summary


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_signal_mid_run_ends_cleanly(tmp_path, tiny_model_dir, signum, status):
    log, out = tmp_path / "log.jsonl", tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "knyang_cam", "--source", "synthetic", "--headless",
                             "--model", str(tiny_model_dir), "--log", str(log), "--output", str(out)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # The log is written under a temporary name beside it until the run ends (paths, sinks).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sum(p.read_text().count("\n") for p in tmp_path.glob(".log.tmp-*")) < 20:
        time.sleep(0.05)
    assert not log.exists() and not out.exists()
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == status, stderr
    assert "Traceback" not in stderr
    assert f"interrupted by {signal.Signals(signum).name}" in stdout
    text = log.read_text()
    assert text.endswith("\n")
    records = [json.loads(line) for line in text.splitlines()]
    assert len(records) >= 20 and [r["frame"] for r in records] == list(range(len(records)))
    assert len(read_frames(out)) == len(records)
    assert f"{len(records)} frame{'s' * (len(records) != 1)} in " in stdout
    assert not list(tmp_path.glob(".*"))  # the temporary files were renamed into place


def test_a_second_signal_unwinds_at_once_carrying_its_number():
    # The exit status is 128 + that number: 143 for a second SIGTERM, not Ctrl-C's 130.
    with app.caught_signals() as caught:
        os.kill(os.getpid(), signal.SIGTERM)
        assert caught == [signal.SIGTERM]
        with pytest.raises(KeyboardInterrupt) as e:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs between bytecodes; it never gets this far
    assert e.value.args == (signal.SIGTERM,)


def test_a_folder_of_odd_sized_photos_makes_one_playable_video(tmp_path, cfg, model):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, (w, h) in enumerate([(320, 240), (200, 300), (640, 200)]):
        cv2.imwrite(str(folder / f"{i}.jpg"), noise_frame(i, w, h))
    status, _ = run(cfg, open_source(str(folder), CameraConfig()), model, output=str(tmp_path / "out.mp4"),
                    log=str(tmp_path / "log.jsonl"))
    assert status == 0
    assert [r["regions"][0]["box"] for r in read_log(tmp_path / "log.jsonl")] == \
        [[40, 0, 240, 240], [0, 50, 200, 200], [220, 0, 200, 200]]
    video = read_frames(tmp_path / "out.mp4")
    # Every photo is in the video, letterboxed into the first one's size.
    assert len(video) == 3 and all(f.shape == (240, 320, 3) for f in video)


def session_with(tmp_path, predictions) -> app.Session:
    """A loop session around a real Saver, at a frame showing `predictions` (keys only, no model)."""
    saver = Saver(tmp_path / "data", tmp_path / "snaps", ("Alpha", "Beta"))
    s = app.Session(config.load(), Controls("center", True), None, saver, None, None, Stats(), io.StringIO())
    s.frame = Frame(0, 0.0, noise_frame(3))
    s.predictions = predictions
    return s


def test_label_keys_with_no_cat_in_view_say_so_and_write_nothing(tmp_path):
    s = session_with(tmp_path, [])
    for key in "123456789ux":
        assert s.apply(handle_key(ord(key), s.ui)) == "no cat to label"
    s.saver.close()
    assert s.saver.poll() == [] and not (tmp_path / "data").exists()


def test_x_saves_the_largest_crop_as_not_one_of_my_cats(tmp_path):
    small = Prediction(Region((0, 0, 10, 10), "detect"), "Alpha", 0.9, (0.9, 0.1))
    large = Prediction(Region((20, 10, 40, 30), "detect"), UNKNOWN, 0.5, (0.5, 0.5))
    s = session_with(tmp_path, [small, large])
    assert s.apply(handle_key(ord("x"), s.ui)) == ""
    s.saver.close()
    (saved,) = (tmp_path / "data" / "not_mine").glob("*.jpg")
    assert cv2.imread(str(saved)).shape == (30, 40, 3)
    assert not (tmp_path / "data" / "Train").exists() and s.saver.labelled == 0


def test_keys_map_to_actions_and_typing_edits_the_name():
    ui = Controls("center", True)
    assert handle_key(-1, ui) is None and handle_key(ord("z"), ui) is None
    assert handle_key(ord("3"), ui) == Action("label", 2)
    assert handle_key(ord("x"), ui) == Action("set_aside", "not_mine")
    assert handle_key(ord("u"), ui) == Action("set_aside", "unlabeled")
    ui.typing = ""
    assert handle_key(ord("q"), ui) == Action("type", "q")  # a name may contain q
    assert handle_key(13, ui) == Action("add_class")


def test_keys_with_caps_lock_on_act_as_their_lower_case_and_type_as_capitals():
    ui = Controls("center", True)
    assert handle_key(ord("Q"), ui) == Action("quit")
    assert handle_key(ord("S"), ui) == Action("snapshot")
    assert handle_key(ord("X"), ui) == Action("set_aside", "not_mine")
    ui.typing = ""
    assert handle_key(ord("Q"), ui) == Action("type", "Q")


def test_a_name_typed_in_an_x11_window_keeps_its_capitals_and_arrow_keys_type_nothing(tmp_path):
    """cv2.waitKeyEx's codes as OpenCV's windows on X11 give them: the Qt one (opencv-python's) reports
    Shift as a key and every letter in lower case; GTK the letter in its case, modifiers above bit 16.
    Masked to a byte, Left (0xFF51) typed a 'Q' and 'Tom' was saved as 'tom'."""
    shift, left, backspace, enter, gtk_shift_mask = 0xFFE1, 0xFF51, 0xFF08, 0xFF0D, 1 << 16
    s = session_with(tmp_path, [])
    qt = [ord("n"), shift, ord("t"), ord("o"), ord("m"), left, ord("x"), backspace, enter]
    gtk = [ord("n"), shift | gtk_shift_mask, ord("E") | gtk_shift_mask, ord("v"), ord("e"), enter]
    for key in qt + gtk:
        s.apply(handle_key(key, s.ui))
    s.saver.close()
    assert s.saver.classes[-2:] == ("Tom", "Eve")
    assert handle_key(left, s.ui) is None and handle_key(0xFF1B, s.ui) == Action("quit")


def test_keys_that_type_no_character_do_nothing_and_modifier_bits_are_ignored():
    # cv2.waitKeyEx's codes, as OpenCV's Qt backend gives them on X11 (its X keysym) and GTK's (keysym, with the
    # modifier state above it: 0x10 is Num Lock). Through cv2.waitKey's low byte, Left typed an upper-case Q into
    # a new cat's name and Insert (0xFF63) switched the crop like `c`.
    left, home, insert, f1, num_lock = 0xFF51, 0xFF50, 0xFF63, 0xFFBE, 0x10 << 16
    ui = Controls("center", True)
    assert [handle_key(k, ui) for k in (left, home, insert, f1)] == [None] * 4
    assert handle_key(num_lock | ord("q"), ui) == Action("quit")
    ui.typing = "Mi"
    assert [handle_key(k, ui) for k in (left, home, insert, f1)] == [None] * 4
    assert handle_key(num_lock | ord("n"), ui) == Action("type", "n")
    assert handle_key(num_lock | 0xFF08, ui) == Action("backspace")  # GTK's BackSpace
    assert handle_key(0xFF8D, ui) == Action("add_class")  # the keypad's Enter
    assert handle_key(num_lock | 27, ui) == Action("cancel_typing")


@pytest.mark.slow
def test_x_key_in_the_loop_saves_the_crop_as_not_mine(tmp_path, cfg, model):
    clip = cat_clip(tmp_path / "cat.mp4", n=5)
    status, _ = run(cfg, VideoFile(clip), model, keys=scripted(["x", "q"]))
    assert status == 0
    (saved,) = (tmp_path / "data" / "not_mine").glob("*.jpg")
    assert cv2.imread(str(saved)).shape == (240, 240, 3)  # the centre crop at frame resolution
    assert not (tmp_path / "data" / "Train").exists()


def test_a_window_closed_while_the_camera_reconnects_ends_the_run_at_once(tmp_path, cfg, model, monkeypatch):
    # The loop looked at the window only after a new frame: closed during a reconnect (here 3 attempts
    # 5 s apart) the run went on until the camera was given up, and then ended with status 3.
    clip = noise_clip(tmp_path / "cam.mp4", n=10)

    def opener():
        """A real capture that runs dry after the clip's frames; reopening fails."""
        if (tmp_path / "opened").exists():
            raise UserError("camera gone")
        (tmp_path / "opened").touch()
        cap = cv2.VideoCapture(str(clip))
        return cap, cap.read()[1]

    class ClosedOnReconnect:
        """A window the user closes as soon as it says the camera is lost."""

        def __init__(self):
            self.status_shown = False

        def show(self, image):
            pass

        def closed(self):
            return self.status_shown

        def close(self):
            pass

    window = ClosedOnReconnect()
    real_draw = app.draw

    def draw(s, image, status=""):
        window.status_shown |= bool(status)
        return real_draw(s, image, status)

    monkeypatch.setattr("knyang_cam.outputs.Window", lambda: window)
    monkeypatch.setattr(app, "draw", draw)
    camera = Camera(0, CameraConfig(reconnect_attempts=3, reconnect_delay_s=5.0), opener=opener)
    started = time.monotonic()
    status, summary = run(cfg, camera, model, window=True, keys=no_keys, log=str(tmp_path / "log.jsonl"))
    assert status == app.EXIT_OK and "quit" in summary
    assert time.monotonic() - started < 5
    assert len(read_log(tmp_path / "log.jsonl")) >= 1


class Screen:
    """The window, counting the pictures it was given (`Window` needs a display)."""

    def __init__(self):
        self.shown = 0

    def show(self, image):
        self.shown += image is not None

    def closed(self):
        return False

    def close(self):
        pass


@pytest.mark.parametrize("window", [True, False])
def test_the_last_photo_stays_in_the_window_until_a_key_ends_the_run(tmp_path, cfg, model, monkeypatch, window):
    # A photo given as --source was shown for one second (a slideshow's frame) and the window closed.
    for k in range(2):
        cv2.imwrite(str(tmp_path / f"{k}.png"), noise_frame(k))
    screen = Screen()
    monkeypatch.setattr("knyang_cam.outputs.Window", lambda: screen)
    presses = iter([-1] * 25 + [ord(" ")] + [-1] * 50)
    status, summary = run(cfg, open_source(str(tmp_path), cfg.camera), model, window=window,
                          keys=lambda ms: next(presses), log=str(tmp_path / "log.jsonl"))
    assert status == app.EXIT_OK and "end of input" in summary, summary
    assert len(read_log(tmp_path / "log.jsonl")) == 2  # each photo analysed once, the held one too
    if window:
        # Both photos, then the last one held through the waits for a key until space ended it.
        assert screen.shown == 2 + 24 and next(presses) == -1
    else:
        assert screen.shown == 0 and next(presses) == -1
