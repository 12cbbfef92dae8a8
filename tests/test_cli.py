"""`python -m knyang_cam` as a user runs it: every user error is one line on stderr and exit 2."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clips import noise_frame, read_frames, write_clip

pytestmark = pytest.mark.slow  # every test runs python -m knyang_cam as a subprocess

ROOT = Path(__file__).resolve().parent.parent
REBUILD = "python -m train --data"


def cli(*args, cwd=ROOT, timeout=120):
    env = {**os.environ, "DISPLAY": ""}  # no window can open: every run here must be headless
    return subprocess.run([sys.executable, "-m", "knyang_cam", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def user_error(result) -> str:
    """The single stderr line of a user error."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clip") / "in.mp4", [noise_frame(i) for i in range(12)], 20)


def test_a_headless_run_from_another_folder(tmp_path, tiny_model_dir, clip):
    result = cli("--source", clip, "--model", tiny_model_dir, "--headless", "--log", tmp_path / "l.jsonl",
                 "--output", tmp_path / "o.mp4", "--crop", "detect", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "12 frames" in result.stdout
    assert len((tmp_path / "l.jsonl").read_text().splitlines()) == 12
    assert len(read_frames(tmp_path / "o.mp4")) == 12


def test_missing_camera_names_index_and_backends(tiny_model_dir):
    line = user_error(cli("--source", "7", "--model", tiny_model_dir, "--headless"))
    assert "camera 7" in line and "backends tried: V4L2" in line
    assert "--source demo" in line  # a first try on a machine without a webcam has somewhere to go


def test_unreadable_sources_name_the_path(tmp_path, tiny_model_dir):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(1).integers(0, 256, 100_000, dtype=np.uint8).tobytes())
    empty = tmp_path / "empty"
    empty.mkdir()
    for source in (tmp_path / "missing.mp4", junk, empty):
        assert str(source) in user_error(cli("--source", source, "--model", tiny_model_dir, "--headless"))


def test_no_window_without_a_display(tiny_model_dir, clip):
    assert "--headless" in user_error(cli("--source", clip, "--model", tiny_model_dir))
    # Wayland without XWayland: Qt's X11 plugin, the only one opencv-python has, aborted the process.
    result = subprocess.run([sys.executable, "-m", "knyang_cam", "--source", str(clip), "--model", str(tiny_model_dir)],
                            cwd=ROOT, env={**os.environ, "DISPLAY": "", "WAYLAND_DISPLAY": "wayland-0"},
                            capture_output=True, text=True, timeout=120)
    assert "DISPLAY is not set" in user_error(result)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11's DISPLAY")
def test_a_display_no_x_server_answers_on_is_one_line_not_an_abort(tmp_path, clip):
    # A stale DISPLAY (tmux reattached over SSH): OpenCV's Qt printed four lines of its own and aborted (134).
    (tmp_path / "earlier.mp4").write_bytes(b"an earlier video")
    env = {k: v for k, v in os.environ.items() if k != "WAYLAND_DISPLAY"} | {"DISPLAY": ":4242"}
    result = subprocess.run([sys.executable, "-m", "knyang_cam", "--source", str(clip), "--output",
                             str(tmp_path / "earlier.mp4")], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    line = user_error(result)
    assert line.startswith("error: cannot open a window on display :4242") and "--headless" in line
    assert (tmp_path / "earlier.mp4").read_bytes() == b"an earlier video"


@pytest.fixture
def broken_models(tmp_path, tiny_model_dir):
    """Copies of the tiny model, each broken in one way, with the file the message must name."""
    def copy(name):
        return Path(shutil.copytree(tiny_model_dir, tmp_path / name))

    no_tflite = copy("no_tflite")
    (no_tflite / "model.tflite").unlink()
    corrupt = copy("corrupt")
    (corrupt / "model.tflite").write_bytes(b"\x00garbage" * 1000)
    mismatch = copy("mismatch")
    meta = json.loads((mismatch / "model.json").read_text())
    meta["classes"] = ["A", "B", "C", "D"]  # the network has 3 outputs
    (mismatch / "model.json").write_text(json.dumps(meta))
    no_json = copy("no_json")
    (no_json / "model.json").unlink()
    return [(tmp_path / "nowhere", tmp_path / "nowhere"), (no_tflite, no_tflite / "model.tflite"),
            (corrupt, corrupt / "model.tflite"), (mismatch, mismatch / "model.json"),
            (no_json, no_json / "model.json")]


def test_broken_models_name_the_file_and_the_rebuild_command(broken_models, clip):
    for model, named in broken_models:
        line = user_error(cli("--source", clip, "--model", model, "--headless"))
        assert str(named) in line and REBUILD in line, line


def test_bad_config_names_the_dotted_key(tmp_path, tiny_model_dir, clip):
    cases = {"regions:\n  crpo: detect\n": ["regions.crpo", "regions.crop"],
             "camera:\n  fps: 1000\n": ["camera.fps", "[1, 240]"],
             "regions:\n  crop: [\n": ["line"]}
    for text, words in cases.items():
        (tmp_path / "c.yaml").write_text(text)
        line = user_error(cli("--source", clip, "--model", tiny_model_dir, "--headless",
                              "--config", tmp_path / "c.yaml"))
        assert all(w in line for w in words), line


def test_class_names_with_path_characters_run_without_writing_outside(tmp_path, tiny_model_dir, clip):
    """The keys themselves are driven in test_app; here a whole run with such a model stays inside."""
    model = Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))
    meta = json.loads((model / "model.json").read_text())
    meta["classes"] = ["../../../escape", "/tmp/abs", "ok"]
    (model / "model.json").write_text(json.dumps(meta))
    (tmp_path / "c.yaml").write_text(f"app:\n  dataset_root: {tmp_path / 'data'}\n")
    before = set(tmp_path.parent.rglob("*"))
    result = cli("--source", clip, "--model", model, "--headless", "--config", tmp_path / "c.yaml")
    assert result.returncode == 0, result.stderr
    assert set(tmp_path.parent.rglob("*")) == before


def test_output_folders_are_created_and_a_file_in_the_way_is_named(tmp_path, tiny_model_dir, clip):
    result = cli("--source", clip, "--model", tiny_model_dir, "--headless", "--max-frames", 3,
                 "--output", "out/demo.mp4", "--log", "out/logs/demo.jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(read_frames(tmp_path / "out" / "demo.mp4")) == 3
    assert len((tmp_path / "out" / "logs" / "demo.jsonl").read_text().splitlines()) == 3
    (tmp_path / "blocker").write_text("x")
    line = user_error(cli("--source", clip, "--model", tiny_model_dir, "--headless",
                          "--output", tmp_path / "blocker" / "o.mp4"))
    assert f"{tmp_path / 'blocker'} is a file, not a folder" in line
