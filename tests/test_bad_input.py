"""Issue 10 row by row, through the real command lines: bad input is one `error:` line and exit 2
(1 for a real I/O failure), never a traceback, and nothing the user had is lost.

Most cases run `main()` in-process: the refusal comes before any model or TensorFlow is loaded.
"""
from __future__ import annotations

import importlib.util
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from clips import noise_frame, read_frames, write_clip
from knyang_cam.__main__ import main as cam_main
from knyang_cam.atomic import mark_work
from knyang_cam.results import NOT_MINE, UNLABELED
from train.__main__ import main as train_main
from train.evaluate import main as evaluate_main
from train.finder import main as finder_main
from train.negatives import main as negatives_main
from train.retrain import main as retrain_main
from train.species import main as species_main

ROOT = Path(__file__).resolve().parent.parent


def call(main, *args) -> int:
    try:
        return main([str(a) for a in args])
    except SystemExit as e:  # argparse's own exit
        return e.code


def one_line(capsys, status, code: int = 2) -> str:
    """The single stderr line of a refused run (and no traceback)."""
    _, err = capsys.readouterr()
    assert "Traceback" not in err
    assert status == code, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def contents(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def user(tmp_path):
    """A user's folder: a video, photos, earlier outputs (a report among them), a config."""
    write_clip(tmp_path / "V.mp4", [noise_frame(i) for i in range(6)])
    (tmp_path / "photos").mkdir()
    for i in range(2):
        cv2.imwrite(str(tmp_path / "photos" / f"{i}.jpg"), noise_frame(i))
    (tmp_path / "earlier.mp4").write_bytes(b"an earlier video")
    (tmp_path / "earlier.jsonl").write_text('{"frame": 0}\n')
    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / "appearances.csv").write_text("cat,start_s\n")
    (rep / ".knyang-cam-report").touch()
    (tmp_path / "c.yaml").write_text("app:\n  dataset_root: data\n")
    return tmp_path


# ---------------------------------------------------------------- the app

@pytest.mark.parametrize("args, words", [
    (["--source", "V.mp4", "--output", "V.mp4"], "is the --source file"),         # row 3
    (["--source", "V.mp4", "--log", "V.mp4"], "is the --source file"),
    (["--source", "photos", "--report", "photos"], "is the --source folder"),
    (["--source", "photos", "--log", "photos/0.jpg"], "in the --source folder"),
    (["--source", "photos", "--output", "photos/new.mp4"], "in the --source folder"),
    (["--source", "V.mp4", "--log", "c.yaml", "--config", "c.yaml"], "is the --config file"),
    (["--source", "V.mp4", "--output", "x.mp4", "--log", "x.mp4"], "are the same file"),  # row 5
    (["--source", "V.mp4", "--log", "rep/appearances.csv", "--report", "rep"], "are the same file"),
])
def test_outputs_onto_inputs_or_each_other_are_refused(user, capsys, monkeypatch, args, words):
    monkeypatch.chdir(user)
    before = contents(user)
    line = one_line(capsys, call(cam_main, *args, "--model", "no-model", "--headless"))
    assert words in line, line
    assert contents(user) == before


@pytest.mark.parametrize("name", ["earlier.mp4", "photos/../clip.MOV", "snap.jpg"])
def test_a_log_named_as_a_video_or_picture_is_refused_and_replaces_nothing(user, capsys, monkeypatch, name):
    monkeypatch.chdir(user)
    (user / "clip.MOV").write_bytes(b"the user's other video")
    before = contents(user)
    line = one_line(capsys, call(cam_main, "--source", "V.mp4", "--log", name, "--output", "new.mp4", "--model",
                                 ROOT / "models" / "knyang", "--headless"))
    assert line == f"error: --log {name} is named as a video or picture ({Path(name).suffix}): the log is JSON " \
                   "lines, e.g. run.jsonl (--output writes the video)"
    assert contents(user) == before


def test_report_folder_with_files_the_app_did_not_write_is_refused(user, capsys):  # row 6
    (user / "photos" / "timeline.png").write_bytes(b"the user's own picture")
    before = contents(user)
    line = one_line(capsys, call(cam_main, "--source", user / "photos", "--report", user / "photos",
                                 "--model", "no-model", "--headless"))
    assert "--report" in line and str(user / "photos") in line
    other = user / "mine"
    other.mkdir()
    (other / "timeline.png").write_bytes(b"the user's own picture")
    line = one_line(capsys, call(cam_main, "--source", user / "V.mp4", "--report", other,
                                 "--model", "no-model", "--headless"))
    assert "timeline.png" in line and "not written by knyang-cam" in line
    assert contents(user) == {**before, Path("mine/timeline.png"): b"the user's own picture"}


def test_a_bad_model_leaves_earlier_outputs_as_they_were(user, capsys):  # row 4
    (user / "broken").mkdir()
    before = contents(user)
    line = one_line(capsys, call(cam_main, "--source", user / "V.mp4", "--model", user / "broken", "--headless",
                                 "--output", user / "earlier.mp4", "--log", user / "earlier.jsonl",
                                 "--report", user / "rep"))
    assert "model.json" in line
    assert contents(user) == before
    assert not [p for p in user.rglob(".*") if p.name != ".knyang-cam-report"]


@pytest.mark.parametrize("args, words", [
    (["--output", "out"], "no extension"),
    (["--output", "out.txt"], "extension '.txt'"),
    (["--output", "photos"], "is a folder"),
    (["--output", "/dev/full"], "not a regular file"),
    (["--report", "V.mp4"], "is a file, not a folder"),
    (["--report", "V.mp4/sub"], "is a file, not a folder"),
    (["--output", ""], "--output is empty"),
    (["--model", ""], "--model is empty"),
    (["--config", ""], "--config is empty"),
    (["--max-frames", "0"], "at least 1, got 0"),
    (["--max-frames", "-5"], "at least 1, got -5"),
    (["--max-frames", "abc"], "whole number of frames, got 'abc'"),
])
def test_unusable_arguments_are_one_line(user, capsys, monkeypatch, args, words):
    monkeypatch.chdir(user)
    before = contents(user)
    line = one_line(capsys, call(cam_main, "--source", "V.mp4", "--model", "no-model", "--headless", *args))
    assert words in line and "_positive_int" not in line, line
    assert contents(user) == before


def test_outputs_onto_files_the_app_reads_without_a_flag_are_refused(user, capsys, monkeypatch):
    # The default config, the cat finder's files and the photos of the dataset the label keys add to.
    monkeypatch.chdir(user)
    (user / "data" / "Train" / "Eve").mkdir(parents=True)  # c.yaml's app.dataset_root
    (user / "data" / "Train" / "Eve" / "1.jpg").write_bytes(b"a photo of Eve")
    before = contents(user)
    shipped = {f: f.read_bytes() for f in (ROOT / "config.yaml", ROOT / "models" / "finder" / "finder.json")}
    for args, words in (
            (["--log", ROOT / "config.yaml"], "is the config file"),
            (["--log", ROOT / "models" / "finder" / "finder.json"], "is in the cat finder folder"),
            # New files too: a model directory holding one is a folder training refuses to replace.
            (["--log", ROOT / "models" / "finder" / "new.jsonl"], "is in the cat finder folder"),
            (["--config", "c.yaml", "--log", "data/Train/Eve/1.jpg"], "in the dataset (app.dataset_root) folder")):
        line = one_line(capsys, call(cam_main, "--source", "V.mp4", "--model", "no-model", "--headless", *args))
        assert words in line, line
    assert contents(user) == before
    assert {f: f.read_bytes() for f in shipped} == shipped


@pytest.mark.parametrize("app_section, words", [
    ("dataset_root: mine/data", "app.dataset_root"),                     # crops into the model directory
    ("snapshots_dir: mine/snaps", "app.snapshots_dir"),
    ("dataset_root: .", "--model"),                                      # the model read as a cat folder
    ("dataset_root: data\n  snapshots_dir: data/snaps", "app.snapshots_dir"),  # full frames read as a cat
])
def test_label_key_folders_in_a_model_directory_or_each_other_are_refused(user, capsys, monkeypatch, tiny_model_dir,
                                                                           app_section, words):
    monkeypatch.chdir(user)
    shutil.copytree(tiny_model_dir, user / "mine")  # the --model directory
    (user / "bad.yaml").write_text(f"app:\n  {app_section}\n")
    before = contents(user)
    line = one_line(capsys, call(cam_main, "--source", "V.mp4", "--model", "mine", "--config", "bad.yaml",
                                 "--headless"))
    assert line.startswith(f"error: {words} ") and "inside" in line, line
    assert contents(user) == before


@pytest.mark.parametrize("setting, said", [
    ("app:\n  dataset_root: notes.txt", "app.dataset_root notes.txt is a file"),
    ("app:\n  snapshots_dir: notes.txt/snaps", "app.snapshots_dir notes.txt/snaps is under the file notes.txt"),
    ("retrain:\n  models_dir: notes.txt", "retrain.models_dir notes.txt is a file"),
    ("app:\n  snapshots_dir: /dev/null", "app.snapshots_dir /dev/null is not a folder"),
])
def test_a_key_folder_that_is_a_file_is_refused_at_start(user, capsys, monkeypatch, tiny_model_dir, setting, said):
    """Found at the key press before, as a toast in a run the user had long started; the file is left as it was."""
    monkeypatch.chdir(user)
    (user / "notes.txt").write_text("mine")
    (user / "bad.yaml").write_text(setting + "\n")
    before = contents(user)
    line = one_line(capsys, call(cam_main, "--source", "V.mp4", "--model", tiny_model_dir, "--config", "bad.yaml",
                                 "--headless"))
    assert line.startswith(f"error: {said}: ") and line.endswith("into a folder; give a folder there"), line
    assert contents(user) == before


@pytest.mark.parametrize("cwd, model", [(".", "."), ("photos", "..")])
def test_a_model_folder_that_is_no_model_is_named_so_before_where_the_label_keys_write(user, capsys, monkeypatch,
                                                                                       cwd, model):
    """`--model .` (or a folder above): app.dataset_root lies inside it, and that was the refusal the user read;
    then the rebuild hint offered to train into the user's folder, which training refuses."""
    monkeypatch.chdir(user / cwd)
    line = one_line(capsys, call(cam_main, "--source", user / "V.mp4", "--model", model, "--headless"))
    assert line.startswith(f"error: {model} is not a model directory: no model.json, only files no model holds "
                           "(such as "), line
    assert line.endswith("give the folder knyang-train wrote (its --out)"), line


def test_a_file_given_as_the_model_names_its_folder(tmp_path, capsys, tiny_model_dir):
    line = one_line(capsys, call(cam_main, "--source", "synthetic", "--model", tiny_model_dir / "model.tflite",
                                 "--headless", "--max-frames", "1"))
    assert line == f"error: {tiny_model_dir / 'model.tflite'} is a file: a model is a directory; give --model " \
                   f"{tiny_model_dir}"
    (tmp_path / "clip.mp4").write_bytes(b"not a model")
    line = one_line(capsys, call(evaluate_main, "--model", tmp_path / "clip.mp4", "--data", tmp_path))
    assert line == f"error: {tmp_path / 'clip.mp4'} is a file: a model is a directory; give the folder holding " \
                   "model.json"


@pytest.mark.parametrize("font, words", [("~/no-such-font.ttf", "no such file"),
                                         ("c.yaml", "not a font file Pillow can read"),
                                         # a folder read 'no such file'; a name over 255 bytes was a traceback
                                         ("photos", "not a font file Pillow can read"),
                                         pytest.param("f" * 300 + ".ttf", "no such file", id="over-255-bytes")])
def test_an_overlay_font_that_is_no_font_file_is_one_line(user, capsys, monkeypatch, font, words):
    """A wrong overlay.font was passed over in silence: the run went on with the names it was set for as boxes."""
    monkeypatch.chdir(user)
    (user / "font.yaml").write_text(f"overlay:\n  font: {font}\n")
    line = one_line(capsys, call(cam_main, "--source", "V.mp4", "--config", "font.yaml", "--headless"))
    assert line.startswith(f"error: config key 'overlay.font' = '{font}': {words}"), line


@pytest.mark.parametrize("flag", ["--output", "--log", "--report", "--source", "--model"])
def test_a_name_too_long_for_the_file_system_is_one_line(user, capsys, monkeypatch, flag):
    monkeypatch.chdir(user)
    given = {"--source": "V.mp4", "--model": ROOT / "models" / "knyang",
             flag: "a" * 300 + (".mp4" if flag in ("--output", "--source") else "")}
    line = one_line(capsys, call(cam_main, "--headless", *(a for pair in given.items() for a in pair)))
    assert line.startswith("error: cannot use ") and line.endswith("File name too long"), line


@pytest.mark.parametrize("source, words", [
    ("\u00b2", "video file not found"),  # a digit to str.isdigit, not to int()
    ("99999999999999999999999", "camera index 99999999999999999999999 is out of range"),
    ("256", "camera index 256 is out of range"),
])
def test_a_camera_index_that_cannot_be_is_one_line(user, capsys, monkeypatch, source, words):
    monkeypatch.chdir(user)
    line = one_line(capsys, call(cam_main, "--source", source, "--model", ROOT / "models" / "knyang", "--headless"))
    assert words in line, line


def test_a_run_that_ends_before_its_first_frame_keeps_the_earlier_outputs(user, monkeypatch):
    # A Ctrl-C before the first frame: a video of no frame would not play, and the log and report would be
    # empty; the earlier ones are kept.
    import io

    from knyang_cam import app, config, model_dir
    from knyang_cam.sources import Synthetic

    monkeypatch.chdir(user)
    before = contents(user)
    out = io.StringIO()
    status = app.run(config.load(), Synthetic(count=0), model_dir.read(ROOT / "models" / "knyang"),
                     output=str(user / "earlier.mp4"), log=str(user / "earlier.jsonl"), report=str(user / "rep"),
                     out=out)
    assert status == 0
    assert contents(user) == before
    assert "0 frames" in out.getvalue() and "left as they were" in out.getvalue()


def test_a_run_that_writes_nothing_leaves_no_empty_folders(user, monkeypatch):
    # Outputs asked for in folders that are not there yet: made to prove they can be written, and taken
    # away again when the run ends before its first frame; a folder that was there stays.
    import io

    from knyang_cam import app, config, model_dir
    from knyang_cam.sources import Synthetic

    monkeypatch.chdir(user)
    (user / "kept").mkdir()
    before = sorted(p.relative_to(user) for p in user.rglob("*"))
    status = app.run(config.load(), Synthetic(count=0), model_dir.read(ROOT / "models" / "knyang"),
                     output=str(user / "new" / "a" / "run.mp4"), log=str(user / "new" / "b" / "run.jsonl"),
                     report=str(user / "kept" / "rep" / "deeper"), out=io.StringIO())
    assert status == 0
    assert sorted(p.relative_to(user) for p in user.rglob("*")) == before


def test_a_log_whose_reader_went_away_ends_the_run_and_keeps_the_video(user, monkeypatch):
    # `--log /dev/stdout | head`: the reader closing the pipe is the end of the run (status 141, as other
    # tools end), not a failed write that discards the video made so far.
    import io

    from knyang_cam import app, config, model_dir
    from knyang_cam.errors import EXIT_BROKEN_PIPE
    from knyang_cam.sources import Synthetic

    monkeypatch.chdir(user)
    read_end, write_end = os.pipe()
    reader = os.fdopen(read_end, "rb")
    lines = []

    def head():  # reads three lines, then leaves
        lines.extend(reader.readline() for _ in range(3))
        reader.close()

    thread = threading.Thread(target=head)
    thread.start()
    out = io.StringIO()
    try:
        status = app.run(config.load(), Synthetic(count=200), model_dir.read(ROOT / "models" / "knyang"),
                         output=str(user / "run.mp4"), log=f"/dev/fd/{write_end}", out=out)
    finally:
        os.close(write_end)
        thread.join()
    assert all(json.loads(line) for line in lines)
    assert status == EXIT_BROKEN_PIPE
    assert "the reader of --log" in out.getvalue(), out.getvalue()
    assert (user / "run.mp4").is_file() and cv2.VideoCapture(str(user / "run.mp4")).read()[0]


@pytest.mark.skipif(os.name != "posix", reason="'-' is /dev/stdout")
def test_a_log_to_stdout_is_json_lines_alone(tmp_path):
    """`--log - | jq`: '-' wrote a file named '-', and with /dev/stdout the start line and summary came first."""
    r = subprocess.run([sys.executable, "-m", "knyang_cam", "--source", "synthetic", "--max-frames", "3",
                        "--headless", "--log", "-"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert [json.loads(line)["frame"] for line in r.stdout.splitlines()] == [0, 1, 2]
    assert "knyang-cam: 3 frames in" in r.stderr
    assert not (tmp_path / "-").exists()


def test_an_empty_source_is_not_the_current_folder(user, capsys, monkeypatch):
    monkeypatch.chdir(user / "photos")
    line = one_line(capsys, call(cam_main, "--source", "", "--model", "no-model", "--headless"))
    assert "--source is empty" in line


def test_nan_in_the_config_names_the_key(user, capsys):
    for text, key in (("smoothing:\n  alpha: .nan\n", "smoothing.alpha"),
                      ("camera:\n  reconnect_delay_s: .inf\n", "camera.reconnect_delay_s"),
                      ("smoothing:\n  unknown_threshold: .nan\n", "smoothing.unknown_threshold")):
        (user / "n.yaml").write_text(text)
        line = one_line(capsys, call(cam_main, "--source", user / "V.mp4", "--config", user / "n.yaml",
                                     "--model", "no-model", "--headless"))
        assert key in line and "finite" in line, line


def test_model_json_that_is_not_an_object_is_one_line(user, capsys):
    model = user / "m"
    model.mkdir()
    for text in ("[1, 2]", "3", '"text"', "null"):
        (model / "model.json").write_text(text)
        line = one_line(capsys, call(cam_main, "--source", user / "V.mp4", "--model", model, "--headless"))
        assert str(model / "model.json") in line and "JSON object" in line


@pytest.mark.slow
def test_a_1x1_photo_with_output_blames_the_frame_size(user, capsys, tiny_model_dir):
    cv2.imwrite(str(user / "dot.png"), np.zeros((1, 1, 3), np.uint8))
    line = one_line(capsys, call(cam_main, "--source", user / "dot.png", "--model", tiny_model_dir,
                                 "--headless", "--output", user / "o.mp4"))
    assert "1x1 pixels" in line and "too small" in line
    assert not (user / "o.mp4").exists() and not list(user.glob(".o.*"))


@pytest.mark.slow
def test_an_unwritable_report_place_is_one_line_before_the_first_frame(user, capsys, tiny_model_dir):
    status = call(cam_main, "--source", user / "V.mp4", "--model", tiny_model_dir, "--headless",
                  "--report", "/proc/knyang-cam-report", "--log", user / "earlier.jsonl")
    out, err = capsys.readouterr()
    assert status == 2 and "Traceback" not in err and out == "", (out, err)
    assert err.startswith("error: cannot write --report /proc/knyang-cam-report") and len(err.splitlines()) == 1
    assert (user / "earlier.jsonl").read_text() == '{"frame": 0}\n' and not list(user.glob(".earlier*"))


@pytest.mark.slow
def test_libjpeg_warnings_stay_off_stderr(user, capfd, tiny_model_dir):
    _, data = cv2.imencode(".jpg", noise_frame(5))
    (user / "photos" / "2-truncated.jpg").write_bytes(data.tobytes()[: len(data) // 2])
    status = call(cam_main, "--source", user / "photos", "--model", tiny_model_dir, "--headless",
                  "--config", user / "c.yaml")
    out, err = capfd.readouterr()
    assert status == 0, err
    assert "3 frames" in out  # the truncated photo still decodes (its top half)
    assert "Premature end of JPEG" not in err and "Traceback" not in err


def run_cam(*args, **kw) -> subprocess.Popen:
    env = {**os.environ, "DISPLAY": ""}
    return subprocess.Popen([sys.executable, "-m", "knyang_cam", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def wait_for_lines(folder: Path, pattern: str, n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(p.read_text().count("\n") for p in folder.glob(pattern)) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"no {n} lines in {folder}/{pattern}")


@pytest.mark.slow
def test_sigkill_mid_run_leaves_earlier_outputs_and_the_next_run_sweeps(user, tiny_model_dir):  # row 4
    before = contents(user)
    outputs = ("--output", user / "earlier.mp4", "--log", user / "earlier.jsonl")
    proc = run_cam("--source", "synthetic", "--headless", "--model", tiny_model_dir, *outputs)
    wait_for_lines(user, ".earlier.tmp-*.jsonl", 10)
    proc.kill()
    proc.communicate(timeout=30)
    assert contents(user) == {**before, **{p.relative_to(user): p.read_bytes() for p in user.glob(".earlier.*")}}
    assert {p.suffix for p in user.glob(".earlier.tmp-*")} == {".mp4", ".jsonl"}
    again = run_cam("--source", "synthetic", "--headless", "--model", tiny_model_dir, "--max-frames", 3, *outputs)
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert not list(user.glob(".earlier.*"))  # the killed run's temporary files were swept
    assert len((user / "earlier.jsonl").read_text().splitlines()) == 3
    assert len(read_frames(user / "earlier.mp4")) == 3


@pytest.mark.slow
def test_a_log_onto_dev_full_is_one_line_exit_1(user, tiny_model_dir):
    proc = run_cam("--source", user / "V.mp4", "--headless", "--model", tiny_model_dir, "--log", "/dev/full",
                   "--output", user / "earlier.mp4")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and err == "error: cannot write --log /dev/full: No space left on device\n", err
    assert (user / "earlier.mp4").read_bytes() == b"an earlier video" and not list(user.glob(".earlier*"))


@pytest.mark.slow
def test_disk_full_while_writing_the_video_keeps_the_earlier_video(user, tiny_model_dir):
    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))

    proc = run_cam("--source", "synthetic", "--headless", "--model", tiny_model_dir, "--max-frames", 60,
                   "--output", user / "earlier.mp4", preexec_fn=limit_file_size)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    assert err == f"error: cannot write --output {user / 'earlier.mp4'}: the video could not be finished " \
                  "(is the disk full?)\n", err
    assert (user / "earlier.mp4").read_bytes() == b"an earlier video" and not list(user.glob(".earlier*"))


@pytest.mark.slow
def test_disk_full_while_logging_is_one_line_exit_1_and_keeps_the_earlier_log(user, tiny_model_dir):
    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    proc = run_cam("--source", "synthetic", "--headless", "--model", tiny_model_dir, "--max-frames", 5000,
                   "--log", user / "earlier.jsonl", preexec_fn=limit_file_size)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot write --log") and "File too large" in lines[0]
    assert (user / "earlier.jsonl").read_text() == '{"frame": 0}\n'
    assert not list(user.glob(".earlier.*"))


# ---------------------------------------------------------------- training

def photos(root: Path, classes=("Nabi", "Tori"), n: int = 3) -> Path:
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for k in range(n):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(root / name / f"{k}.jpg")
    return root


def test_out_onto_the_dataset_is_refused_and_deletes_nothing(tmp_path, capsys):  # row 1
    data = photos(tmp_path / "D")
    before = contents(data)
    for out in (data, data / "Nabi", data / "models" / "m", tmp_path):
        line = one_line(capsys, call(train_main, "--data", data, "--out", out, "--weights", "none"))
        assert "overlaps --data" in line
    assert contents(data) == before


def test_one_photo_per_cat_is_refused_before_any_work_saying_why(tmp_path, capsys):
    # Each cat's only photo is learnt, none is left to check the model: said at once, not after the backbone
    # has started and computed every crop (and not as photos that "do not decode").
    data = photos(tmp_path / "D", n=1)
    line = one_line(capsys, call(train_main, "--data", data, "--out", tmp_path / "m", "--weights", "none"))
    assert "no validation photos" in line and "every cat has one photo" in line, line
    assert not (tmp_path / "m").exists()


def test_cat_folders_holding_one_file_that_is_no_photo_say_so_not_one_photo_each(tmp_path, capsys):
    for name in ("Nabi", "Tori"):
        (tmp_path / "D" / name).mkdir(parents=True)
        (tmp_path / "D" / name / "notes.txt").write_text("fed at 7")
    line = one_line(capsys, call(train_main, "--data", tmp_path / "D", "--out", tmp_path / "m", "--weights", "none"))
    assert "no decodable image for class Nabi" in line and "notes.txt does not decode" in line, line


def test_a_feature_cache_inside_the_dataset_or_the_out_is_refused_before_any_work(tmp_path, capsys):
    data = photos(tmp_path / "D")
    before = contents(data)
    out = tmp_path / "models" / "m"
    for cache, flag in ((data / "Nabi" / "cache", "--data"), (out, "--out"), (out / "cache", "--out")):
        (tmp_path / "c.yaml").write_text(f"train:\n  feature_cache: {cache}\n")
        line = one_line(capsys, call(train_main, "--data", data, "--out", out, "--weights", "none",
                                     "--config", tmp_path / "c.yaml"))
        assert f"train.feature_cache {cache} is inside {flag}" in line, line
    assert contents(data) == before and not out.exists()


def test_a_feature_cache_that_is_a_file_is_refused_before_any_work(tmp_path, capsys):
    data = photos(tmp_path / "D")
    (tmp_path / "features.npz").write_bytes(b"the user's file")
    (tmp_path / "c.yaml").write_text(f"train:\n  feature_cache: {tmp_path / 'features.npz'}\n")
    line = one_line(capsys, call(train_main, "--data", data, "--out", tmp_path / "m", "--weights", "none",
                                 "--config", tmp_path / "c.yaml"))
    assert line == f"error: train.feature_cache {tmp_path / 'features.npz'} is a file, not a folder: give a folder " \
                   "for the feature cache"
    line = one_line(capsys, call(retrain_main, "--model", tmp_path / "old", "--data", data, "--out", tmp_path / "m",
                                 "--cache", tmp_path / "features.npz"))
    assert "--cache" in line and "is a file, not a folder" in line, line
    assert (tmp_path / "features.npz").read_bytes() == b"the user's file" and not (tmp_path / "m").exists()


def test_out_onto_a_folder_of_user_files_is_refused(tmp_path, capsys):  # row 2
    data = photos(tmp_path / "D")
    mine = tmp_path / "Documents"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    line = one_line(capsys, call(train_main, "--data", data, "--out", mine, "--weights", "none"))
    assert "not a model directory" in line
    assert (mine / "thesis.tex").read_text() == "years of work"


def test_out_onto_a_folder_of_user_files_with_a_model_json_is_refused(tmp_path, capsys):
    data = photos(tmp_path / "D")
    mixed = tmp_path / "mixed"
    (mixed / "photos").mkdir(parents=True)
    (mixed / "model.json").write_text('{"hello": 1}')
    (mixed / "precious.txt").write_text("keep me")
    before = contents(mixed)
    line = one_line(capsys, call(train_main, "--data", data, "--out", mixed, "--weights", "none"))
    assert "holds photos, precious.txt beside its model" in line, line
    assert contents(mixed) == before and (mixed / "photos").is_dir()


def test_out_onto_a_model_directory_with_user_files_in_its_report_is_refused(tmp_path, capsys):
    data = photos(tmp_path / "D")
    model = tmp_path / "m"
    (model / "report").mkdir(parents=True)
    (model / "model.json").write_text("{}")
    for name in ("metrics.json", "eval-D.json", "notes.txt"):
        (model / "report" / name).write_text("keep me")
    before = contents(model)
    line = one_line(capsys, call(train_main, "--data", data, "--out", model, "--weights", "none"))
    assert "holds report/notes.txt beside its model" in line, line
    assert contents(model) == before


def test_an_empty_out_is_refused_not_taken_for_the_default(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default would be models/D here
    data = photos(tmp_path / "D")
    for out in ("", "  "):
        line = one_line(capsys, call(train_main, "--data", data, "--out", out, "--weights", "none"))
        assert "--out is empty" in line
    assert not (tmp_path / "models").exists()


def test_a_data_model_or_weights_name_over_255_bytes_is_not_found_in_one_line(tmp_path, capsys):
    # No such folder can exist; Path.is_dir raised OSError (File name too long) for it: a traceback.
    long = tmp_path / ("p" * 300)
    model = fake_model(tmp_path / "m", ("A", "B"))
    data = photos(tmp_path / "D", classes=("A", "B"))
    for line in (one_line(capsys, call(train_main, "--data", long, "--out", tmp_path / "o", "--weights", "none")),
                 one_line(capsys, call(evaluate_main, "--model", model, "--data", long)),
                 one_line(capsys, call(train_main, "--data", data, "--out", tmp_path / "o", "--weights", long))):
        assert "not found" in line and "pppp" in line, line
    assert "model directory not found" in one_line(capsys, call(evaluate_main, "--model", long, "--data", data))


def test_data_that_is_a_file_says_so(tmp_path, capsys):
    photo = tmp_path / "mycats" / "Nabi" / "photo.jpg"
    photo.parent.mkdir(parents=True)
    photo.write_bytes(b"x")
    line = one_line(capsys, call(train_main, "--data", photo, "--out", tmp_path / "m", "--weights", "none"))
    # One photo of a cat's folder: the folder to give is the one above the cat's.
    assert "is a file: give the dataset folder" in line and f"--data {tmp_path / 'mycats'} if Nabi/" in line, line


@pytest.mark.parametrize("name", ["unknown ", " Nabi"])
def test_a_class_name_with_outer_spaces_is_refused(tmp_path, capsys, name):
    root = photos(tmp_path / "D", classes=("Tori", name))
    line = one_line(capsys, call(train_main, "--data", root, "--out", tmp_path / "m", "--weights", "none"))
    assert f"class folder name {name!r}" in line and "starts or ends with a space" in line


def empty_hdf5(path: Path) -> Path:
    import h5py

    h5py.File(path, "w").close()
    return path


@pytest.mark.parametrize("main, before", [(train_main, ["--data", "D", "--out", "m"]),
                                          (negatives_main, ["--pets", "P"]), (finder_main, ["--pets", "P"]),
                                          (species_main, ["--pets", "P", "--out", "f"])])
def test_a_file_that_is_no_weights_fails_before_tensorflow_starts(tmp_path, capsys, main, before):
    """A notes file passed as --weights failed only once Keras read it, 8.5 s into a run."""
    data = photos(tmp_path / "D")
    (tmp_path / "P" / "annotations").mkdir(parents=True)
    (tmp_path / "P" / "annotations" / "foreground_polygons.json").write_text("{}")
    shutil.copytree(data / "Nabi", tmp_path / "P" / "cats")
    notes = tmp_path / "notes.weights.h5"
    notes.write_text("backbone: the one from the shared folder\n")
    args = [str(tmp_path / a) if a in ("D", "m", "P") else a for a in before]
    line = one_line(capsys, call(main, *args, "--weights", notes))
    assert f"--weights {notes} is not a weights file" in line, line
    line = one_line(capsys, call(main, *args, "--weights", tmp_path / "P"))  # it read "file not found"
    assert f"--weights {tmp_path / 'P'} is a folder: give a MobileNetV2 no-top .weights.h5 file" in line, line
    assert not (tmp_path / "m").exists()
    # An HDF5 file and a .keras archive pass the check (Keras loads both); a user block before HDF5's signature too.
    from train.model import check_weights_file

    archive = tmp_path / "w.keras"
    shutil.make_archive(str(archive.with_suffix("")), "zip", data / "Nabi")
    archive.with_suffix(".zip").rename(archive)
    blocked = tmp_path / "blocked.h5"
    blocked.write_bytes(b"\0" * 512 + empty_hdf5(tmp_path / "plain.h5").read_bytes())
    for ok in (tmp_path / "plain.h5", archive, blocked):
        check_weights_file(str(ok))


@pytest.mark.slow  # Keras
def test_weights_of_another_network_are_one_line_without_keras_warnings(tmp_path, capsys):
    import warnings

    import keras

    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    other.save_weights(tmp_path / "dense.weights.h5")
    data = photos(tmp_path / "D")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status = call(train_main, "--data", data, "--out", tmp_path / "m", "--weights", tmp_path / "dense.weights.h5")
    _, err = capsys.readouterr()
    assert status == 2 and "Traceback" not in err
    (line,) = [line for line in err.splitlines() if not line.startswith("dataset ")]  # after the dataset's line
    assert "they are not MobileNetV2 alpha=1.0 no-top weights" in line and "Example" not in line, line
    assert not [w for w in caught if "Skipping" in str(w.message)]


@pytest.mark.slow  # Keras
@pytest.mark.parametrize("change, words", [({"classes": ["a", "b", "c", "Zed"]}, "lists 4 classes but"),
                                           ({"input_size": [96, 96]}, "takes input [64, 64, 3] but")])
def test_evaluate_refuses_a_model_json_its_network_disagrees_with(tmp_path, capsys, tiny_model_dir, change, words):
    model = tmp_path / "m"
    shutil.copytree(tiny_model_dir, model)
    meta = json.loads((model / "model.json").read_text())
    (model / "model.json").write_text(json.dumps({**meta, **change}))
    data = photos(tmp_path / "D", classes=tuple(change.get("classes", meta["classes"])[:3]))
    line = one_line(capsys, call(evaluate_main, "--model", model, "--data", data, "--json", tmp_path / "e.json"))
    assert words in line, line
    assert not (tmp_path / "e.json").exists()


@pytest.mark.parametrize("layout", ["classes", "split"])
def test_a_class_named_unknown_is_refused(tmp_path, capsys, layout):  # row 9
    root = tmp_path / "D"
    photos(root / "Train" if layout == "split" else root, classes=("Nabi", "unknown"))
    line = one_line(capsys, call(train_main, "--data", root, "--out", tmp_path / "m", "--weights", "none"))
    assert "reserved name" in line and "unknown" in line
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("layout", ["classes", "split"])
def test_unlabeled_and_not_mine_are_never_classes(tmp_path, layout):
    from train.data import find_images

    root = tmp_path / "D"
    photos(root / "Train" if layout == "split" else root, classes=("Nabi", "Tori", UNLABELED, NOT_MINE))
    photos(root, classes=(UNLABELED, NOT_MINE))
    assert find_images(root, 0.34, 0).classes == ("Nabi", "Tori")


def test_a_class_of_broken_files_is_found_before_any_training(tmp_path, capsys):
    data = photos(tmp_path / "D")
    for f in (data / "Tori").iterdir():
        f.write_bytes(b"not a photo")
    t0 = time.perf_counter()
    line = one_line(capsys, call(train_main, "--data", data, "--out", tmp_path / "m", "--weights", "none"))
    assert "no decodable image for class Tori" in line and time.perf_counter() - t0 < 5


@pytest.mark.slow
def test_dataset_errors_come_before_tensorflow_is_imported(tmp_path):
    data = photos(tmp_path / "D", classes=("Nabi", "unknown"))
    code = ("import sys; from train.__main__ import main; s = main(sys.argv[1:]); "
            "print('tensorflow' in sys.modules); sys.exit(s)")
    r = subprocess.run([sys.executable, "-c", code, "--data", str(data), "--out", str(tmp_path / "m")],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout.strip() == "False", (r.stdout, r.stderr)
    assert len(r.stderr.splitlines()) == 1


@pytest.mark.slow
def test_a_second_training_onto_the_same_out_is_refused(tmp_path):
    data = photos(tmp_path / "D")
    out = tmp_path / "m"
    holder = subprocess.Popen([sys.executable, "-c", f"""
import sys
from knyang_cam import model_out
with model_out.claim_model_dir({str(out)!r}):
    print("held", flush=True)
    sys.stdin.read()
"""], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        r = subprocess.run([sys.executable, "-m", "train", "--data", str(data), "--out", str(out),
                            "--weights", "none"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    finally:
        holder.communicate("", timeout=30)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.splitlines()) == 1 and f"another process (pid {holder.pid})" in r.stderr


TINY_TRAIN = """train:
  image_size: 32
  alpha: 0.35
  batch_size: 8
  head_epochs: 1
  fine_tune_epochs: 0
  feature_cache: {cache}
"""


@pytest.mark.slow
def test_sigterm_during_export_removes_the_staging_folder(tmp_path, tiny_model_dir):  # row 8
    data = photos(tmp_path / "D", n=4)
    (tmp_path / "t.yaml").write_text(TINY_TRAIN.format(cache=tmp_path / "cache"))
    out = tmp_path / "models" / "m"
    shutil.copytree(tiny_model_dir, out)
    before = contents(out)
    proc = subprocess.Popen([sys.executable, "-m", "train", "--data", str(data), "--out", str(out),
                             "--weights", "none", "--config", str(tmp_path / "t.yaml")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None and not list(out.parent.glob(".m.staging-*")):
        time.sleep(0.01)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert "Traceback" not in err and err.splitlines()[-1].startswith("error: interrupted by SIGTERM")
    assert sorted(p.name for p in out.parent.iterdir()) == ["m"]
    assert contents(out) == before
    # SIGKILL cannot be cleaned up after: the next run finds the staging folder and removes it.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = out.parent / f".m.staging-{dead.pid}"
    (stale / "report").mkdir(parents=True)
    mark_work(stale)
    r = subprocess.run(proc.args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"note: removed {stale}" in r.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == ["m"] and contents(out) != before


@pytest.mark.slow
def test_sigterm_during_any_export_removes_the_staging_folder(tmp_path):
    """The background retrain exports from its own command line: SIGTERM (the app's Teacher.close)
    must not leave a staging folder there either."""
    script = f"""
import sys, time
sys.path.insert(0, {str(ROOT / 'tests')!r})
from conftest import build_tiny_model
from knyang_cam.model_dir import ModelInfo
from train.export import write_model_dir

def report(folder):
    print("exporting", flush=True)
    time.sleep(60)

info = ModelInfo(path={str(tmp_path / 'm')!r}, classes=("A", "B"), input_size=(64, 64), unknown_threshold=0.5)
write_model_dir(build_tiny_model(2), info, info.path, report)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "exporting", proc.communicate()[1][-2000:]
    assert list(tmp_path.glob(".m.staging-*"))
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode != 0 and sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.slow
def test_disk_full_during_export_is_one_line_exit_1_and_keeps_the_old_model(tmp_path, tiny_model_dir):
    out = tmp_path / "m"
    shutil.copytree(tiny_model_dir, out)
    before = contents(out)
    # The report is written last, into the staging folder, past a file size limit: a disk that fills up then.
    script = f"""
import resource, signal, sys
sys.path.insert(0, {str(ROOT / 'tests')!r})
from conftest import build_tiny_model
from knyang_cam.errors import exit_status
from knyang_cam.model_dir import ModelInfo
from train.export import write_model_dir

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (10_000_000, 10_000_000))
info = ModelInfo(path={str(out)!r}, classes=("A", "B"), input_size=(64, 64), unknown_threshold=0.5)
sys.exit(exit_status(lambda: write_model_dir(build_tiny_model(2), info, info.path,
                                             lambda report: (report / "big").write_bytes(bytes(20_000_000))) and 0))
"""
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.stderr.splitlines()[-1] == f"error: cannot write the model directory {out}: File too large; the " \
                                        f"previous one (if any) is unchanged"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"] and contents(out) == before


# ---------------------------------------------------------------- evaluate

def test_evaluate_names_its_default_json_after_any_data_folder(tmp_path, monkeypatch):
    from knyang_cam import paths
    from train.evaluate import default_json

    monkeypatch.chdir(tmp_path)
    # A legal 250-byte folder name made a name the system refuses (an OSError traceback);
    # a newline went into the file name, `.` gave eval-.json.
    long = default_json("d" * 250, None)
    assert long.startswith("eval-ddd") and long.endswith(".json")
    assert len(long.encode()) == paths.NAME_MAX - paths.BESIDE_EXTRA
    assert paths.check_file("--json", tmp_path / long)
    hangul = default_json("나" * 100, None)  # 3 bytes a letter: cut between letters, not inside one
    assert hangul.endswith("나.json") and len(hangul.encode()) > paths.NAME_MAX - paths.BESIDE_EXTRA - 3
    assert default_json("new\nline", None) == "eval-new_line.json"
    assert default_json(".", None) == f"eval-{tmp_path.name}.json"
    assert default_json(None, "strays/") == "eval-unknown-strays.json"


def test_evaluate_json_onto_a_folder_is_refused_before_any_work(tmp_path, capsys):
    model = fake_model(tmp_path / "m", ("A", "B"))
    data = photos(tmp_path / "D", classes=("A", "B"))
    line = one_line(capsys, call(evaluate_main, "--model", model, "--data", data, "--json", tmp_path))
    assert "--json" in line and "is a folder" in line
    line = one_line(capsys, call(evaluate_main, "--model", model, "--data", data, "--json", model / "model.json"))
    assert "would replace an input file" in line


def test_evaluate_given_a_model_or_a_photo_where_a_folder_of_photos_goes_says_so(tmp_path, capsys):
    model = fake_model(tmp_path / "m", ("A", "B"))
    data = photos(tmp_path / "D", classes=("A", "B"))
    before = contents(tmp_path)
    for flag in ("--data", "--unknown"):
        line = one_line(capsys, call(evaluate_main, "--model", model, flag, model))
        assert f"{flag} {model} is a model directory" in line, line
    line = one_line(capsys, call(evaluate_main, "--model", data, "--data", model))  # the two swapped
    assert f"--data {model} is a model directory" in line, line
    photo = next((data / "A").iterdir())
    line = one_line(capsys, call(evaluate_main, "--model", model, "--unknown", photo))
    assert f"--unknown {photo} is a file" in line, line
    assert contents(tmp_path) == before


def test_evaluate_json_replaces_no_input_nor_the_training_report(tmp_path, capsys):
    model = fake_model(tmp_path / "m", ("A", "B"))
    (model / "report" / "metrics.json").write_text("the training's report")
    os.link(model / "model.json", tmp_path / "linked.json")
    data = photos(tmp_path / "D", classes=("A", "B"))
    before = contents(tmp_path)
    for target in (model / "report" / "metrics.json", model / "notes.json", model / "report" / "eval.txt",
                   tmp_path / "linked.json"):
        line = one_line(capsys, call(evaluate_main, "--model", model, "--data", data, "--json", target))
        assert "would replace an input file or the training report" in line, line
    line = one_line(capsys, call(evaluate_main, "--model", model, "--data", data, "--json", data / "e.json"))
    assert "inside the --data folder" in line
    assert contents(tmp_path) == before
    from train.evaluate import _check_json

    _check_json(model / "report" / "eval-D.json", model, {"--data": data})  # evaluate's own place


def test_evaluate_unknown_folder_missing_or_empty_is_refused_before_data_is_scored(tmp_path, capsys):
    model = fake_model(tmp_path / "m", ("A", "B"))
    data = photos(tmp_path / "D", classes=("A", "B"))
    (tmp_path / "empty").mkdir()
    line = one_line(capsys, call(evaluate_main, "--model", model, "--data", data, "--unknown", tmp_path / "strays"))
    assert line == f"error: --unknown folder not found: {tmp_path / 'strays'}"
    line = one_line(capsys, call(evaluate_main, "--model", model, "--data", data, "--unknown", tmp_path / "empty"))
    assert line == f"error: --unknown folder {tmp_path / 'empty'} holds no photos"
    line = one_line(capsys, call(evaluate_main, "--model", model, "--data", tmp_path / "nope"))
    assert "dataset folder not found" in line


def test_evaluate_finds_the_bundled_model_from_any_folder_as_the_app_does(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = one_line(capsys, call(evaluate_main, "--model", "models/knyang", "--data", tmp_path / "nope",
                                 "--json", tmp_path / "e.json"))
    assert "dataset folder not found" in line  # the model was read: its error would come first
    line = one_line(capsys, call(evaluate_main, "--model", "models/nope", "--data", tmp_path / "nope"))
    assert line.startswith("error: model directory not found: models/nope")


@pytest.fixture
def read_only(tmp_path) -> Path:
    """A folder no file can be made in, also by root (for whom a mode of 0o555 blocks nothing)."""
    if os.geteuid() == 0:
        return Path("/sys")
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    return folder


def test_a_read_only_place_is_one_line_before_any_work(tmp_path, capsys, read_only):
    model = fake_model(tmp_path / "m", ("A", "B"))
    data = photos(tmp_path / "D", classes=("A", "B"))
    line = one_line(capsys, call(evaluate_main, "--model", model, "--data", data, "--json", read_only / "e.json"))
    assert line.startswith(f"error: cannot write --json {read_only / 'e.json'}: "), line
    line = one_line(capsys, call(train_main, "--data", data, "--out", read_only / "cats", "--weights", "none"))
    assert line.startswith(f"error: cannot write --out {read_only / 'cats'}: "), line


@pytest.mark.slow
def test_evaluate_on_a_truncated_keras_file_is_one_line(tmp_path, capsys, tiny_model_dir):
    model = Path(shutil.copytree(tiny_model_dir, tmp_path / "m"))
    keras_file = model / "model.keras"
    keras_file.write_bytes(keras_file.read_bytes()[:2000])
    meta = json.loads((model / "model.json").read_text())
    data = photos(tmp_path / "D", classes=meta["classes"])
    line = one_line(capsys, call(evaluate_main, "--model", model, "--data", data, "--json", tmp_path / "e.json"))
    assert str(keras_file) in line and "python -m train" in line
    assert not (tmp_path / "e.json").exists()


# ---------------------------------------------------------------- retrain

def fake_model(folder: Path, classes=("Nabi", "Tori")) -> Path:
    """A model directory whose network is never loaded: a refusal must come before any work."""
    (folder / "report").mkdir(parents=True)
    (folder / "model.json").write_text(json.dumps({"format": 1, "classes": list(classes), "input_size": [32, 32]}))
    (folder / "model.keras").write_bytes(b"never loaded")
    return folder


def test_retrain_out_onto_its_own_model_or_into_it_is_refused_before_any_work(tmp_path, capsys):
    model = fake_model(tmp_path / "m")
    data = photos(tmp_path / "D")
    before = contents(tmp_path)
    for out in (model, f"{model}/", model / "report", model / "new"):
        line = one_line(capsys, call(retrain_main, "--model", model, "--data", data, "--out", out))
        assert "--model" in line and "--out" in line, line
    assert contents(tmp_path) == before and not (model / "new").exists()


@pytest.mark.parametrize("layout", ["", "Train"])
def test_a_retrain_on_a_dataset_of_one_of_its_cats_names_the_cat_it_would_forget(tmp_path, capsys, layout,
                                                                                 monkeypatch):
    # Refused as "a household of one cat" before, which sent the user to add a neighbour's cat.
    model = fake_model(tmp_path / "m")
    photos(tmp_path / "D" / layout, classes=("Nabi",))
    monkeypatch.chdir(tmp_path)  # the app run from the user's folder: `python -m train` is no command there
    line = one_line(capsys, call(retrain_main, "--model", model, "--data", tmp_path / "D", "--out", tmp_path / "new"))
    assert "has no photos of Tori, which the current model knows" in line, line
    installed = importlib.util.find_spec("knyang_train") is not None
    assert line.endswith("train a new model with " + ("knyang-train" if installed else "python -m train")), line


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_retrain_ends_in_one_error_event_and_one_line(tmp_path, capsys, monkeypatch, signum):
    import train.retrain

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt(signum)  # what Ctrl-C, or SIGTERM through its handler, raises mid-work

    monkeypatch.setattr(train.retrain, "retrain", interrupted)
    model = fake_model(tmp_path / "m")
    try:
        status = call(retrain_main, "--model", model, "--data", photos(tmp_path / "D"), "--out", tmp_path / "new")
    except KeyboardInterrupt:
        status = None
    out, err = capsys.readouterr()
    assert status == 128 + signum, err
    assert err.splitlines() == [f"error: interrupted by {signal.Signals(signum).name}; --model is unchanged"]
    assert json.loads(out.splitlines()[-1])["event"] == "error"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # put back as it was


def test_retrain_checks_every_output_before_any_work(tmp_path, capsys):
    model = fake_model(tmp_path / "m")
    data = photos(tmp_path / "D")
    mine = tmp_path / "new-refused"  # where a refused model would go
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    line = one_line(capsys, call(retrain_main, "--model", model, "--data", data, "--out", tmp_path / "new"))
    assert f"--out {mine} is a folder with files" in line, line
    for cache, words in ((data / "cache", "--cache"), (model / "cache", "--cache"),
                         (tmp_path / "ok-refused", "--cache")):  # where a refused model would go
        line = one_line(capsys, call(retrain_main, "--model", model, "--data", data, "--out", tmp_path / "ok",
                                     "--cache", cache))
        assert f"{words} {cache} is inside" in line, line
    assert (mine / "notes.txt").read_text() == "keep me" and not (data / "cache").exists()


@pytest.mark.parametrize("args, words", [
    (["--threads", "-3"], "--threads"), (["--threads", "99999999"], "--threads"), (["--threads", "x"], "--threads"),
    (["--max-drop", "nan"], "--max-drop"), (["--max-drop", "-1"], "--max-drop"), (["--max-drop", "1.5"], "--max-drop"),
    (["--max-drop", "abc"], "--max-drop")])
def test_retrain_numbers_out_of_range_are_one_line(tmp_path, capsys, args, words):
    model = fake_model(tmp_path / "m")
    line = one_line(capsys, call(retrain_main, "--model", model, "--data", photos(tmp_path / "D"),
                                 "--out", tmp_path / "new", *args))
    assert words in line and args[1] in line, line


# ---------------------------------------------------------------- python -m train.finder

def test_finder_checks_its_inputs_and_every_output_before_any_work(tmp_path, capsys):
    pets = tmp_path / "pets"
    (pets / "annotations").mkdir(parents=True)
    (pets / "annotations" / "foreground_polygons.json").write_text("{}")
    weights = tmp_path / "w.weights.h5"
    empty_hdf5(weights)  # a weights file to the early check; never loaded
    cats = photos(tmp_path / "cats")
    model = fake_model(tmp_path / "m")
    before = contents(tmp_path)
    ok = ["--pets", pets, "--weights", weights, "--cats", cats, "--cache", tmp_path / "cache"]
    for args, words in (
            (["--pets", tmp_path / "nope", "--weights", weights], "is not the Oxford-IIIT Pet sample"),
            (["--pets", pets, "--weights", tmp_path / "nope.h5"], "--weights file not found"),
            ([*ok, "--out", cats], "--out"),                    # the photos pasted into scenes
            ([*ok, "--out", cats / "Nabi" / "finder"], "overlaps --cats"),
            ([*ok, "--out", pets / "cats"], "overlaps --pets"),
            ([*ok, "--out", model], "not a cat finder's files"),  # a model directory: its own files only
            ([*ok, "--out", weights], "is a file"),
            ([*ok[:-2], "--cache", cats / "Nabi", "--out", tmp_path / "f"], "--cache"),
            ([*ok, "--out", tmp_path / "f", "--scenes", "-5"], "--scenes"),
            ([*ok, "--out", tmp_path / "f", "--epochs", "0"], "--epochs"),
            # a file as --cache, any name over 255 bytes: found after the scenes were made, or a traceback
            ([*ok[:-2], "--cache", weights, "--out", tmp_path / "f"], "--cache"),
            ([*ok[:-2], "--cache", tmp_path / ("c" * 300), "--out", tmp_path / "f"], "File name too long"),
            (["--pets", tmp_path / ("p" * 300), "--weights", weights], "File name too long"),
            ([*ok, "--out", tmp_path / ("o" * 300)], "File name too long")):
        line = one_line(capsys, call(finder_main, *args))
        assert words in line, line
    assert contents(tmp_path) == before and not (tmp_path / "f").exists()


def test_species_checks_its_inputs_and_its_output_before_any_work(tmp_path, capsys):
    pets = tmp_path / "pets"
    (pets / "annotations").mkdir(parents=True)
    (pets / "annotations" / "foreground_polygons.json").write_text("{}")
    weights = empty_hdf5(tmp_path / "w.weights.h5")  # a weights file to the early check; never loaded
    cats = photos(tmp_path / "cats")
    model = fake_model(tmp_path / "m")
    before = contents(tmp_path)
    ok = ["--pets", pets, "--weights", weights, "--cats", cats]
    for args, words in (
            (["--pets", tmp_path / "nope", "--weights", weights], "is not the Oxford-IIIT Pet sample"),
            (["--pets", pets, "--weights", tmp_path / "nope.h5"], "--weights file not found"),
            ([*ok[:-2], "--cats", tmp_path / "nope", "--out", tmp_path / "f"], "--cats folder not found"),
            ([*ok, "--out", cats], "--out"),
            ([*ok, "--out", cats / "Nabi" / "finder"], "overlaps --cats"),
            ([*ok, "--out", pets / "cats"], "overlaps --pets"),
            ([*ok, "--out", model], "not a cat finder's files"),  # a model directory: its own files only
            ([*ok, "--out", weights], "is a file"),
            ([*ok, "--out", tmp_path / "f", "--crops", "0"], "--crops"),
            ([*ok, "--out", tmp_path / ("o" * 300)], "File name too long")):
        line = one_line(capsys, call(species_main, *args))
        assert words in line, line
    assert contents(tmp_path) == before and not (tmp_path / "f").exists()


@pytest.mark.parametrize("main", [cam_main, train_main, evaluate_main, retrain_main, finder_main, negatives_main,
                                  species_main])
def test_every_option_in_help_says_what_it_is(capsys, main):
    """--help is where a new user looks: an option listed bare (`--out OUT`) says neither what it is nor its default."""
    assert call(main, "--help") == 0
    lines = capsys.readouterr().out.split("options:")[1].splitlines()
    bare = [line.strip() for line, after in zip(lines, lines[1:] + [""])
            if line.startswith("  -") and "  " not in line.strip() and not after.startswith(" " * 6)]
    assert not bare, bare


@pytest.mark.parametrize("module", ["train.negatives", "train.finder", "train.species"])
def test_the_bank_and_finder_builders_refuse_bad_paths_before_tensorflow_is_imported(tmp_path, module):
    # Their start hid TensorFlow's log by importing it first: seconds before the one line of a wrong --pets.
    code = (f"import sys; from {module} import main; s = main(sys.argv[1:]); "
            "print('tensorflow' in sys.modules); sys.exit(s)")
    r = subprocess.run([sys.executable, "-c", code, "--pets", str(tmp_path / "nope"), "--weights", "x.h5"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout.strip() == "False", (r.stdout, r.stderr)


# ---------------------------------------------------------------- python -m train.negatives

def test_negatives_checks_its_inputs_and_its_output_before_any_work(tmp_path, capsys):
    pets = tmp_path / "pets"
    for kind in ("cats", "dogs"):
        (pets / kind).mkdir(parents=True)
        cv2.imwrite(str(pets / kind / "a.jpg"), noise_frame(1))
    weights = tmp_path / "w.weights.h5"
    empty_hdf5(weights)  # a weights file to the early check; never loaded
    before = contents(tmp_path)
    for args, words in (
            (["--pets", tmp_path / "nope", "--weights", weights], "has no photos in cats/ or dogs/"),
            (["--pets", pets, "--weights", tmp_path / "nope.h5"], "--weights file not found"),
            (["--pets", pets, "--weights", weights, "--out", tmp_path], "is a folder"),
            (["--pets", pets, "--weights", weights, "--out", pets / "cats" / "bank.npz"], "inside --pets"),
            (["--pets", pets, "--weights", weights, "--out", weights], "is the --weights file"),
            (["--pets", pets, "--weights", weights, "--out", weights.with_suffix(".npz"), "--bogus"], "--bogus"),
            # too long for the temporary file beside it: found after the bank was computed, a traceback
            (["--pets", pets, "--weights", weights, "--out", tmp_path / ("b" * 246 + ".npz")], "its name is 250 bytes"),
            (["--pets", tmp_path / ("p" * 300), "--weights", weights], "File name too long"),
            (["--pets", pets, "--weights", tmp_path / ("w" * 300)], "--weights file not found")):
        line = one_line(capsys, call(negatives_main, *args))
        assert words in line, line
    assert contents(tmp_path) == before
