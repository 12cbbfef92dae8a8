"""The command lines' ergonomics, and a real wheel installed into a fresh venv and run from elsewhere."""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from knyang_cam import __version__, bundled, extras
from knyang_cam.__main__ import main
from knyang_cam.console import with_progress
from knyang_cam.errors import UserError
from knyang_cam.sources import Synthetic, VideoFile

ROOT = Path(__file__).resolve().parent.parent


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"knyang-cam {__version__}"


def test_start_line_and_a_summary_without_cats_never_seen(capsys):
    assert main(["--source", "synthetic", "--headless", "--max-frames", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("knyang-cam: model ") and "(5 classes: Chungdam, Eve, Hwamok, Leo, Ming)" in out[0]
    assert "backend litert; source synthetic 640x480 30 fps; crop detect" in out[0]
    (seen,) = [line for line in out if line.startswith("on screen: ")]
    assert seen == "on screen: no cat"  # the synthetic square is no cat: the finder finds none


def test_quiet_prints_nothing(capsys):
    assert main(["--source", "synthetic", "--headless", "--max-frames", "3", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_demo_names_the_bundled_clip_from_any_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["--source", "demo", "--headless", "--max-frames", "2"]) == 0
    assert str(bundled.path("assets/demo.mp4")) in capsys.readouterr().out
    assert bundled.resolve("models/knyang") == bundled.path("models/knyang")
    assert bundled.resolve("models/nope") == Path("models/nope")  # the error names what was typed


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_only_for_files_on_a_terminal():
    clip = bundled.path("assets/demo.mp4")
    assert with_progress(VideoFile(clip), stream=io.StringIO()).__class__ is VideoFile  # a pipe, a log
    assert with_progress(Synthetic(count=5), stream=_Terminal()).__class__ is not VideoFile
    term = _Terminal()
    with with_progress(VideoFile(clip), max_frames=40, stream=term) as src:
        for _ in zip(range(40), src):
            pass
    shown = term.getvalue()
    assert "/40" in shown and "frame" in shown  # count of the total, rate and ETA


def test_missing_extra_names_the_pip_install():
    with pytest.raises(UserError) as e:
        extras.require("training", "train", "surely_not_installed_module")
    assert str(e.value) == ('training needs surely_not_installed_module, which is not installed: '
                            'pip install "knyang-cam[train]"')
    extras.require("the app", "train", "numpy")  # present: nothing happens


def test_the_app_retrains_with_the_trainer_of_its_own_tree():
    from knyang_cam import background_retrain

    assert background_retrain.TRAINER == "train" and (bundled.root() / "train" / "retrain.py").is_file()


def test_trainer_usage_names_the_command_it_was_run_as(monkeypatch):
    from train.__main__ import build_parser, prog_name

    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/knyang-train", "--help"])
    assert build_parser().format_usage().startswith("usage: knyang-train ")
    monkeypatch.setattr(sys, "argv", ["/repo/train/__main__.py", "--help"])
    assert build_parser().format_usage().startswith("usage: python -m train ")
    assert prog_name("evaluate") == "python -m train.evaluate"


def test_a_run_started_with_stdout_closed_ends_without_a_traceback(monkeypatch, tmp_path):
    """`knyang-cam ... >&-` (a service with no stdout): Python sets sys.stdout to None."""
    monkeypatch.setattr(sys, "stdout", None)
    log = tmp_path / "l.jsonl"
    assert main(["--source", "synthetic", "--headless", "--max-frames", "2", "--log", str(log)]) == 0
    assert len(log.read_text().splitlines()) == 2


@pytest.mark.slow
def test_a_closed_pipe_ends_quietly():
    """`knyang-cam ... | head -1`: the reader goes away before the summary is printed."""
    proc = subprocess.Popen([sys.executable, "-m", "knyang_cam", "--source", "synthetic", "--headless",
                             "--max-frames", "60", "--realtime"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    first = proc.stdout.readline()
    proc.stdout.close()  # what `head -1` does after its line
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 141
    assert first.startswith(b"knyang-cam: model")
    assert "Traceback" not in err and "BrokenPipe" not in err


def _tree_copy(dst: Path) -> Path:
    """The project's files as git sees them (tracked and new, not ignored): what a clone holds,
    without build/ leftovers or retrained models."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.splitlines()
    for f in files:
        if (ROOT / f).is_file():
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dst / f)
    return dst


def test_the_wheel_readme_builds_in_the_clone_is_ignored_by_git():
    """README's `pip wheel --no-deps -w dist .` leaves the wheel (tens of MB) in the clone: `git add -A` took it, and
    _tree_copy copied it into every wheel test's tree."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git clone")
    wheel = f"dist/knyang_cam-{__version__}-py3-none-any.whl"
    assert subprocess.run(["git", "check-ignore", "-q", wheel], cwd=ROOT).returncode == 0


@pytest.mark.slow
def test_wheel_installs_without_tensorflow_and_runs_the_demo_from_elsewhere(tmp_path):
    """Build the wheel, install it (base, no extras) into a fresh venv from PyPI, run it from a
    folder that is not the clone. Needs the package index; skipped when it cannot be reached."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: cannot tell the project's files from leftovers")
    src = _tree_copy(tmp_path / "src")
    for user_model in ("mycats", "knyang-retrained-20261205-101500"):  # what training writes beside the shipped
        (src / "models" / user_model).mkdir()
        (src / "models" / user_model / "model.json").write_text("{}")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                            str(tmp_path / "dist"), str(src)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("knyang_cam-*.whl")
    models = {n.split("_bundled/models/")[1].split("/")[0] for n in zipfile.ZipFile(wheel).namelist()
              if "_bundled/models/" in n}
    assert models == {"README.md", "knyang.cross_validation.json", "knyang", "finder"}, models
    # The finder's second look is optional to the app (a folder without it finds as before): its loss would be silent.
    finder = {n.split("_bundled/models/finder/")[1] for n in zipfile.ZipFile(wheel).namelist()
              if "_bundled/models/finder/" in n}
    assert finder == {"README.md", "finder.json", "finder.tflite", "species.json", "species.tflite"}, finder
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    # Nothing of this test run's environment: pip must see an empty venv, the app only the wheel.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    install = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", str(wheel)],
                             capture_output=True, text=True, env=env, cwd=tmp_path)
    if install.returncode and any(s in install.stderr for s in
                                  ("NewConnectionError", "Could not fetch", "No matching distribution")):
        pytest.skip(f"the package index cannot be reached: {install.stderr.strip().splitlines()[-1]}")
    assert install.returncode == 0, install.stderr
    work = tmp_path / "elsewhere"
    work.mkdir()

    def cmd(*args):
        return subprocess.run([str(a) for a in args], cwd=work, env=env, capture_output=True, text=True,
                              timeout=300)

    r = cmd(bin_dir / "knyang-cam", "--source", "demo", "--headless", "--max-frames", "30",
            "--output", "demo.mp4", "--log", "demo.jsonl")
    assert r.returncode == 0, r.stderr
    assert "_bundled/models/knyang (5 classes" in r.stdout.replace(os.sep, "/")
    assert len((work / "demo.jsonl").read_text().splitlines()) == 30 and (work / "demo.mp4").stat().st_size
    # The base install is the live app: no TensorFlow, and features that need it say how to get it.
    r = cmd(bin_dir / "python", "-c", "import importlib.util as u; print(u.find_spec('tensorflow'))")
    assert r.stdout.strip() == "None"
    r = cmd(bin_dir / "knyang-train", "--data", str(work), "--weights", "none")
    assert r.returncode == 2 and r.stderr == ('error: training needs tensorflow, keras, which is not '
                                              'installed: pip install "knyang-cam[train]"\n')
    backend = work / "tf.yaml"
    backend.write_text("classifier:\n  backend: tensorflow\n")
    r = cmd(bin_dir / "knyang-cam", "--source", "demo", "--headless", "--config", backend)
    assert r.returncode == 2 and r.stderr == ('error: classifier.backend: tensorflow needs tensorflow, keras, '
                                              'which is not installed: pip install "knyang-cam[train]"\n')
    # The bank of other animals ships as photos too, for a backbone without train/negatives.npz.
    r = cmd(bin_dir / "python", "-c", "import importlib.util as u, pathlib; "
            "p = pathlib.Path(u.find_spec('knyang_train').origin).parent / 'bank'; "
            "print(len(list(p.glob('cats/*.jpg'))), len(list(p.glob('dogs/*.jpg'))), (p / 'README.md').is_file())")
    assert r.stdout.split() == ["120", "250", "True"], r.stderr
    # `--weights bundled` trains offline on the base of the wheel's own model, and its label names its weights.
    r = cmd(bin_dir / "python", "-c", "from knyang_train.model import bundled_model_file, bundled_label; "
            "f = bundled_model_file(); print(f.is_file(), '_bundled' in f.parts, bundled_label())")
    assert r.stdout.strip().split(None, 2) == \
        ["True", "True", "bundled model's base (mobilenet_v2_1.0_160_no_top.weights.h5)"], r.stderr
    # The `t` key's background retrain runs the installed trainer, not a `train` module.
    r = cmd(bin_dir / "python", "-c", "from knyang_cam.background_retrain import TRAINER; print(TRAINER)")
    assert r.stdout.strip() == "knyang_train"
    r = cmd(bin_dir / "python", "-m", "knyang_train.retrain", "--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: python -m knyang_train.retrain ")
    r = cmd(bin_dir / "knyang-train", "--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: knyang-train ")
    r = cmd(bin_dir / "python", "-m", "knyang_train.evaluate", "--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: python -m knyang_train.evaluate ")
    # A user's own train.py does not shadow the trainer, nor the trainer the user's file.
    (work / "train.py").write_text("print('the user train.py')\n")
    r = cmd(bin_dir / "python", "-m", "train")
    assert r.stdout.strip() == "the user train.py"


def test_misclassified_titles_stay_inside_the_figure(tmp_path):
    pytest.importorskip("matplotlib")
    import numpy as np

    from train.report import plot_misclassified

    n = 8
    pixels = np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    probs = np.tile([[0.2, 0.8]], (n, 1))
    names = [tmp_path / f"Screenshot_20200417-19145{i}_Instagram_with_a_long_name.jpg" for i in range(n)]
    fig = plot_misclassified(tmp_path / "m.png", pixels, np.zeros(n, int), probs, ("Chungdam", "Hwamok"),
                             names)
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    for ax in fig.axes:
        title = ax.title.get_window_extent(renderer)
        assert box.x0 <= title.x0 and title.x1 <= box.x1 and title.y1 <= box.y1, ax.title.get_text()
    titles = [ax.title.get_window_extent(renderer) for ax in fig.axes]
    for a, b in zip(titles, titles[1:]):  # side by side in a row, not running into each other
        assert a.x1 <= b.x0 or abs(a.y0 - b.y0) > 1


def test_strangers_are_scored_by_the_unknown_threshold():
    import numpy as np

    from train.evaluate import score_strangers

    probs = np.array([[0.9, 0.05, 0.05], [0.4, 0.3, 0.3], [0.2, 0.7, 0.1], [0.34, 0.33, 0.33]])
    assert score_strangers(probs, 0.6, ("A", "B", "C")) == {
        "n": 4, "unknown": 2, "unknown_share": 0.5, "threshold": 0.6, "named_as": {"A": 1, "B": 1}}


def test_a_class_with_no_photo_to_score_is_shown_as_not_scored():
    import numpy as np

    from train.evaluate import score

    lines = score(np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0]]), np.array([0, 1]), ("A", "B", "C")).lines()
    assert lines[2].split() == ["A", "1.000", "1.000", "1"]
    assert lines[4].split() == ["C", "-", "-", "0"]  # not 0.000 / 0.000, which reads "always wrong"


@pytest.mark.slow
def test_evaluate_unknown_folder_reports_how_many_read_unknown(tmp_path, tiny_model_dir):
    import json

    import cv2
    import numpy as np

    folder = tmp_path / "strangers" / "Tom"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(5):
        cv2.imwrite(str(folder / f"{i}.jpg"), rng.integers(0, 256, (80, 100, 3), dtype=np.uint8))
    (folder / "notes.txt").write_text("not a photo")
    out = tmp_path / "eval.json"
    r = subprocess.run([sys.executable, "-m", "train.evaluate", "--model", str(tiny_model_dir),
                        "--unknown", str(tmp_path / "strangers"), "--json", str(out)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())["strangers"]
    assert result["n"] == 5 and result["unknown"] + sum(result["named_as"].values()) == 5
    assert (f"cats the model does not know: {result['unknown']} of 5 photos read unknown"
            in r.stdout)
    assert "notes.txt" in r.stderr and "Traceback" not in r.stderr
    assert "cuInit" not in r.stderr and "absl" not in r.stderr  # TensorFlow's start-up noise is off


def _recorded_top_band(path):
    import cv2

    cap = cv2.VideoCapture(str(path))
    ok, first = cap.read()
    cap.release()
    assert ok
    return first[:12].astype(float)


def test_recording_leaves_the_hud_out_unless_asked(tmp_path, capsys):
    """The synthetic frames' top rows are a bright gradient; the HUD darkens them to 35%."""
    from knyang_cam.sources import Synthetic

    plain, hud = tmp_path / "plain.mp4", tmp_path / "hud.mp4"
    for out, extra in ((plain, []), (hud, ["--hud"])):
        assert main(["--source", "synthetic", "--headless", "--max-frames", "3", "--output", str(out),
                     "--quiet", *extra]) == 0
    raw = Synthetic().image(0)[:12].astype(float)
    assert abs(_recorded_top_band(plain).mean() - raw.mean()) < 8
    assert _recorded_top_band(hud).mean() < 0.6 * raw.mean()


@pytest.mark.slow
def test_training_starts_without_tensorflow_noise(tmp_path):
    """No `E0000 ... cuInit`, no absl preamble, no oneDNN notice: only the trainer's own lines."""
    from test_train_e2e import make_photos, small_config

    data = make_photos(tmp_path / "cats")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    r = subprocess.run([sys.executable, "-m", "train", "--data", str(data), "--out", str(tmp_path / "m"),
                        "--weights", "none", "--config", str(small_config(tmp_path, 0))],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    for noise in ("cuInit", "absl::InitializeLog", "cuda_platform", "oneDNN", "I0000", "E0000"):
        assert noise not in r.stderr, noise


@pytest.mark.slow
def test_the_bank_builder_starts_without_tensorflow_noise(tmp_path, shared_weights):
    """python -m train.negatives is quiet like python -m train (train.finder shares its switch)."""
    pets = tmp_path / "pets"
    for kind in ("cats", "dogs"):
        (pets / kind).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.random.default_rng(i).integers(0, 255, (120, 160, 3), np.uint8)).save(
                pets / kind / f"{kind}{i}.jpg")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    r = subprocess.run([sys.executable, "-m", "train.negatives", "--pets", str(pets), "--weights",
                        str(shared_weights), "--out", str(tmp_path / "bank.npz")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "bank.npz").is_file()
    for noise in ("cuInit", "absl::InitializeLog", "cuda_platform", "oneDNN", "I0000", "E0000"):
        assert noise not in r.stderr, noise
