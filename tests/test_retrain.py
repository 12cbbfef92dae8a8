"""Head-only background retraining (train.retrain): cache reuse, growing classes, refusing worse models,
not_mine crops turning a look-alike to "unknown"."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clips import write_class
from knyang_cam import config, model_dir
from knyang_cam.config import TrainConfig
from knyang_cam.teacher import Teacher
from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # real training (Keras) and python -m train.retrain subprocesses

SMALL = TrainConfig(image_size=64, batch_size=16, head_epochs=150, head_learning_rate=0.05,
                    validation_fraction=0.25, seed=3)


def make_model_dir(out: Path, classes=("Alpha", "Beta", "Gamma"), size: int = 64) -> Path:
    """A small real model shaped like train.model's (extractor, mirror mean, head), random conv features."""
    import keras

    from knyang_cam.model_dir import ModelInfo
    from train.export import write_model_dir
    from train.model import AVG_NAME, EXTRACTOR_NAME, FEATURES_NAME, classifier, head_layers

    keras.utils.set_random_seed(0)
    inp = keras.Input((size, size, 3), name="pixels")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inp)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    pooled = keras.layers.Concatenate(name=FEATURES_NAME)([keras.layers.GlobalAveragePooling2D(name=AVG_NAME)(x),
                                                          keras.layers.GlobalMaxPooling2D()(x)])
    drop, dense = head_layers(len(classes), 0.0)
    model = classifier(keras.Model(inp, pooled, name=EXTRACTOR_NAME), drop, dense)
    info = ModelInfo(path=out, classes=tuple(classes), input_size=(size, size), unknown_threshold=0.6,
                     backbone={"name": "tiny-test-net", "alpha": 1.0, "weights": "random"})
    return write_model_dir(model, info, out)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 3-class dataset and a small real model for it (random conv features, like a frozen base)."""
    base = tmp_path_factory.mktemp("retrain")
    data = base / "data"
    for name in ("Alpha", "Beta", "Gamma"):
        write_class(data, name, 8)
    make_model_dir(base / "models" / "v1", classes=("Alpha", "Beta", "Gamma"), size=64)
    return base, data, base / "cache"


def test_retrain_reuses_cache_and_grows_a_new_class(trained, tmp_path):
    from train.retrain import live_recipe, retrain

    base, data, cache = trained
    plan = live_recipe(SMALL)
    views = len(plan.head_views) + len(plan.turned)  # the gate's turned references run through it too
    events = []
    first = retrain(base / "models" / "v1", data, tmp_path / "v2", SMALL, cache_dir=cache, emit=events.append)
    # The first retrain sees every photo through the v1 extractor: the live crops of the 18
    # training photos and of the 6 validation photos (the split is the retrain's own, so the model
    # learns them after scoring them on their centre square and its mirror image, the first two).
    assert first.features_computed == 24 * views
    assert first.accepted, first.reason
    assert [e["phase"] for e in events if e["text"].endswith(" s)")] == list(first.stages)
    assert {"features", "head", "gate", "export"} <= set(first.stages)

    write_class(data, "Delta", 8)
    second = retrain(tmp_path / "v2", data, tmp_path / "v3", SMALL, cache_dir=cache)
    # v2 keeps v1's extractor, so only Delta's 8 new photos run through the backbone.
    assert second.features_computed == 8 * views
    assert second.classes == ("Alpha", "Beta", "Delta", "Gamma")
    assert second.accepted, second.reason
    info = model_dir.read(second.out)
    assert info.classes == second.classes
    assert second.new_accuracy >= 0.75

    from knyang_cam.classify import load_classifier

    clf = load_classifier(info, backend="litert", threads=1)
    delta = np.stack([np.asarray(Image.open(p).convert("RGB").resize((64, 64)))
                      for p in sorted((data / "Delta").glob("*.png"))])
    assert np.mean(clf.predict(delta).argmax(axis=1) == info.classes.index("Delta")) >= 0.75
    for name in ("Delta",):
        for p in (data / name).glob("*"):
            p.unlink()
        (data / name).rmdir()


def test_worse_model_is_refused_and_kept_aside(trained, tmp_path):
    import shutil

    from train.retrain import retrain

    base, _, cache = trained
    classes = ("Alpha", "Beta", "Gamma")
    good, bad = tmp_path / "good", tmp_path / "bad"
    for name in classes:
        write_class(good / "Train", name, 8)
        write_class(good / "Validation", name, 3, start=8)
    # The same Validation photos; every training photo filed under the next cat's name.
    shutil.copytree(good / "Validation", bad / "Validation")
    for name, wrong in zip(classes, classes[1:] + classes[:1]):
        shutil.copytree(good / "Train" / name, bad / "Train" / wrong)
    first = retrain(base / "models" / "v1", good, tmp_path / "v2", SMALL, cache_dir=cache)
    assert first.accepted and first.new_accuracy >= 0.75, first.reason
    result = retrain(tmp_path / "v2", bad, tmp_path / "new", SMALL, cache_dir=cache)
    assert not result.accepted
    assert "refused" in result.reason
    assert result.old_accuracy == first.new_accuracy  # the same 9 Validation photos
    assert result.new_accuracy < result.old_accuracy - 0.5
    assert not (tmp_path / "new").exists()
    assert Path(result.out) == tmp_path / "new-refused"
    assert model_dir.read(result.out).classes == classes


@pytest.mark.parametrize("damage", [{"cut": [0.1]}, {"cut": "x"}, {"floor": None}, {"cut": None, "floor": None}])
def test_a_damaged_familiarity_in_model_json_costs_the_patch_not_the_retrain(trained, tmp_path, capsys, damage):
    from train.retrain import retrain

    base, data, cache = trained
    retrain(base / "models" / "v1", data, tmp_path / "v2", SMALL, cache_dir=cache)
    meta = tmp_path / "v2" / model_dir.META_FILE
    fam = json.loads(meta.read_text())["familiarity"]
    # An edited model.json, or one of another version: a KeyError, IndexError or ValueError traceback before.
    fam.update(damage)
    for key in [k for k, v in damage.items() if v is None]:  # None: the entry is missing
        del fam[key]
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "familiarity": fam}))
    capsys.readouterr()
    result = retrain(tmp_path / "v2", data, tmp_path / "v3", SMALL, cache_dir=cache)
    assert result.accepted and not result.tflite_patched, result.reason
    assert "model.json's familiarity has no usable cut or floor" in capsys.readouterr().err


def test_cli_prints_json_lines_and_exit_2_on_bad_model(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "train.retrain", "--model", str(tmp_path / "nope"),
                           "--data", str(tmp_path / "D"), "--out", str(tmp_path / "x")],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events[-1]["event"] == "error" and "model directory not found" in events[-1]["message"]
    assert "Traceback" not in proc.stderr


def test_background_retrain_reports_progress_and_an_accepted_model(trained, tmp_path, monkeypatch):
    from knyang_cam.background_retrain import BackgroundRetrain

    base, data, cache = trained
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    job = BackgroundRetrain(data, tmp_path / "models", max_drop=0.02, train=SMALL)
    assert job.start(base / "models" / "v1")
    assert not job.start(base / "models" / "v1"), "a second retrain must wait for the first"
    seen = set()
    while job.running:
        if job.status:
            seen.add(job.status.split(":")[1].strip().split(" ")[0])
        time.sleep(0.01)
    outcome = job.wait(timeout=120)
    assert outcome is not None and outcome.accepted, outcome
    assert outcome.model.parent == tmp_path / "models" and outcome.model.name.startswith("v1-retrained-")
    assert model_dir.read(outcome.model).classes == ("Alpha", "Beta", "Gamma")
    assert job.poll() is None, "an outcome is handed out once"
    assert {"features", "head"} & seen


def test_background_retrain_failure_is_an_outcome_not_a_crash(tmp_path):
    from knyang_cam.background_retrain import BackgroundRetrain

    job = BackgroundRetrain(tmp_path / "no-data", tmp_path / "models")
    assert job.start(tmp_path / "no-model")
    outcome = job.wait(timeout=300)  # importing TensorFlow alone takes a minute on a busy 2-core machine
    assert outcome is not None and not outcome.accepted
    assert "model directory not found" in outcome.message


def test_a_class_added_to_a_model_trained_with_weights_none(tmp_path):
    """The whole path on generated photos: `python -m train --weights none`, a new cat's folder,
    head-only retrain, and a model directory with the grown head that LiteRT runs."""
    from knyang_cam.classify import load_classifier
    from train.retrain import retrain

    data = tmp_path / "data"
    for name in ("Alpha", "Beta", "Gamma"):
        write_class(data, name, 6)
    config = tmp_path / "config.yaml"
    config.write_text("train:\n  image_size: 32\n  alpha: 0.35\n  head_epochs: 3\n  fine_tune_epochs: 0\n"
                      "  validation_fraction: 0.34\n")
    proc = subprocess.run([sys.executable, "-m", "train", "--data", str(data), "--out", str(tmp_path / "v1"),
                           "--weights", "none", "--config", str(config)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    write_class(data, "Delta", 6)
    # Random backbone weights make accuracy meaningless here, so any accuracy is accepted.
    cfg = TrainConfig(image_size=32, alpha=0.35, head_epochs=3, validation_fraction=0.34)
    result = retrain(tmp_path / "v1", data, tmp_path / "v2", cfg, max_drop=1.0, cache_dir=tmp_path / "cache")
    assert result.accepted and result.classes == ("Alpha", "Beta", "Delta", "Gamma")
    clf = load_classifier(model_dir.read(result.out), backend="litert", threads=1)
    probs = clf.predict(np.zeros((2, 32, 32, 3), np.uint8))
    assert probs.shape == (2, 4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # Its head knows other animals (one unit more): the retrain learns them again, from the shipped bank's
    # photos, or from those the model was trained on when they were others (bench/strangers.py's bank).
    from train import negatives, recipe

    def learnt(out) -> int:
        return json.loads((Path(out) / "report" / "metrics.json").read_text())["dataset"]["other_animals_in_head"]

    assert learnt(result.out) == len(negatives.photos()) * len(recipe.BANK_VIEWS)
    few = negatives.photos()[:2]
    other = retrain(tmp_path / "v1", data, tmp_path / "v3", cfg, max_drop=1.0, cache_dir=tmp_path / "cache",
                    bank_photos=few)
    assert learnt(other.out) == len(few) * len(recipe.BANK_VIEWS)


def test_feature_cache_identity_follows_the_pooling_not_only_the_weights():
    """Same weights, other pooling: other features, so the cache must not serve the old vectors."""
    import keras

    from train.features import identity

    def extractor(pool):
        keras.utils.set_random_seed(0)
        inp = keras.Input((32, 32, 3), name="pixels")
        return keras.Model(inp, pool(name="features")(keras.layers.Conv2D(4, 3, name="conv")(inp)))

    avg, peak = extractor(keras.layers.GlobalAveragePooling2D), extractor(keras.layers.GlobalMaxPooling2D)
    assert [w.tobytes() for w in avg.get_weights()] == [w.tobytes() for w in peak.get_weights()]
    assert identity(avg) != identity(peak)
    assert identity(avg) == identity(extractor(keras.layers.GlobalAveragePooling2D))


def _lookalike(folder: Path, n: int, start: int = 0) -> list[Path]:
    """Alpha's colour and stripe, on a checked coat: the head calls it Alpha, yet it is another cat."""
    rng = np.random.default_rng(99 + start)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + n):
        img = np.zeros((72, 72, 3), np.uint8) + np.array((220, 40, 40), np.uint8)
        img[:, 6:14] = 255 - img[:, 6:14]
        img[(np.arange(72)[:, None] // 6 + np.arange(72)[None, :] // 6) % 2 == 0] //= 2
        img = np.clip(img.astype(int) + rng.integers(-25, 25, img.shape), 0, 255).astype(np.uint8)
        paths.append(folder / f"lookalike_{i:03d}.png")
        Image.fromarray(img).save(paths[-1])
    return paths


def test_not_mine_crops_turn_a_lookalike_to_unknown(trained, tmp_path):
    """Crops saved with the not-mine key become the gate's negatives in the retrained model."""
    import shutil

    import keras

    from knyang_cam.classify import load_classifier
    from knyang_cam.results import NOT_MINE
    from train import familiar
    from train.retrain import retrain

    base, shared, cache = trained
    data = tmp_path / "data"  # the app's layout: <root>/Train/<cat>/, <root>/not_mine/
    shutil.copytree(shared, data / "Train")
    rng = np.random.default_rng(7)
    for photo in sorted((data / "Train").rglob("*.png")):  # light that varies, as in real photos
        pixels = np.asarray(Image.open(photo), np.float32) * rng.uniform(0.6, 1.0)
        Image.fromarray(pixels.astype(np.uint8)).save(photo)
    strangers = _lookalike(tmp_path / "stranger", 6, start=50)

    def answers(model):
        info = model_dir.read(model)
        clf = load_classifier(info, backend="litert", threads=1)
        size = info.input_size[0]

        def read(paths):
            probs = clf.predict(np.stack([np.asarray(Image.open(p).convert("RGB").resize((size, size)))
                                          for p in paths]))
            return np.where(probs.max(axis=1) >= info.unknown_threshold, probs.argmax(axis=1), -1)
        return read(strangers), read(sorted((data / "Train" / "Alpha").glob("*.png")))

    before = retrain(base / "models" / "v1", data, tmp_path / "before", SMALL, cache_dir=cache)
    assert model_dir.read(before.out).familiarity["other_animals"] == 0
    _lookalike(data / NOT_MINE, 6)  # six presses of the not-mine key, on other frames of the look-alike
    after = retrain(base / "models" / "v1", data, tmp_path / "after", SMALL, cache_dir=cache)
    assert after.accepted, after.reason
    assert after.features_computed == 6 * 2, "only the new crops (and their mirror images) ran"
    info = model_dir.read(after.out)
    assert info.classes == ("Alpha", "Beta", "Gamma"), "not_mine is never a class"
    assert info.familiarity["other_animals"] >= 1, "the not_mine crops are the gate's other animals"
    stranger, alpha_after = answers(after.out)
    assert np.mean(alpha_after == 0) >= 0.75, f"Alpha must still be named: {alpha_after}"
    others = familiar.others_of(keras.models.load_model(Path(after.out) / model_dir.KERAS_FILE, compile=False))
    saved = sorted((data / NOT_MINE).glob("*.png"))
    assert len(others) >= 1 and len(saved) == 6
    # Not asserted here: that the look-alike now reads unknown. On these generated photos with
    # random conv features it does not (the cut keeps 97% of Alpha's crops, and the Alpha crops
    # nearest the look-alike pull the cut down with it); the gate's behaviour with negatives is
    # tested on a network whose answers are known by construction:
    # tests/test_familiar.py::test_other_animals_turn_a_lookalike_to_unknown_in_the_network.


def test_not_mine_crops_without_photos_of_my_cats_say_what_is_missing(trained, tmp_path):
    """A fresh install's dataset folder holds only what the not-mine key saved: a clear error, no model."""
    from knyang_cam.results import NOT_MINE
    from train.data import DatasetError
    from train.retrain import retrain

    base, _, cache = trained
    _lookalike(tmp_path / "only" / NOT_MINE, 3)
    with pytest.raises(DatasetError, match="3 not_mine crops but no photos of your cats"):
        retrain(base / "models" / "v1", tmp_path / "only", tmp_path / "out", SMALL, cache_dir=cache)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out-refused").exists()


def test_a_retrain_that_would_forget_cats_the_model_knows_is_refused(tmp_path):
    # A fresh dataset root with crops of two of the bundled model's five cats: the new model would know only those.
    for name in ("Eve", "Leo"):
        (tmp_path / "data" / "Train" / name).mkdir(parents=True)
        for k in range(3):
            Image.new("RGB", (40, 40), (60 * k, 90, 120)).save(tmp_path / "data" / "Train" / name / f"{k}.jpg")
    proc = subprocess.run([sys.executable, "-m", "train.retrain", "--model", str(ROOT / "models" / "knyang"),
                           "--data", str(tmp_path / "data"), "--out", str(tmp_path / "new")],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 2, proc.stderr
    (event,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert event["event"] == "error" and "no photos of Chungdam, Hwamok, Ming" in event["message"]
    assert "would forget them" in event["message"] and not (tmp_path / "new").exists()


def _shadow_trainer(tmp_path, monkeypatch, init: str, retrain: str | None = None, cwd: Path | None = None):
    """The app's trainer package replaced by one of `init` and `retrain.py` source (what a real one
    cannot be made to do on cue: die on import, tell its result and linger); python -m looks in `cwd`."""
    from knyang_cam import background_retrain

    fake = tmp_path / "shadow" / background_retrain.TRAINER
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(init)
    if retrain is not None:
        (fake / "retrain.py").write_text(retrain)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "shadow"))
    monkeypatch.setattr(background_retrain, "_PROJECT", tmp_path / "shadow")
    monkeypatch.chdir(cwd or tmp_path)


def test_a_retrain_that_dies_without_an_event_is_told_by_its_last_stderr_line(tmp_path, monkeypatch):
    from knyang_cam import background_retrain

    # A trainer that cannot even start (its package raises on import).
    _shadow_trainer(tmp_path, monkeypatch, "raise RuntimeError('the trainer is broken')\n")
    job = background_retrain.BackgroundRetrain(tmp_path / "data", tmp_path / "models")
    assert job.start(ROOT / "models" / "knyang")
    outcome = job.wait(timeout=120)
    assert outcome is not None and not outcome.accepted
    assert outcome.message.startswith("retraining failed (exit status 1): ")
    assert outcome.message.endswith("RuntimeError: the trainer is broken"), outcome.message


def test_a_failed_retrain_names_the_app_settings_not_the_trainers_flags(tmp_path):
    from knyang_cam.background_retrain import BackgroundRetrain

    dataset = tmp_path / "cats.txt"  # app.dataset_root pointing at a file
    dataset.write_text("not a folder")
    job = BackgroundRetrain(dataset, tmp_path / "models")
    assert job.start(ROOT / "models" / "knyang")
    outcome = job.wait(timeout=180)
    assert outcome is not None and not outcome.accepted
    assert f"app.dataset_root {dataset} is a file" in outcome.message, outcome.message
    assert "--data" not in outcome.message


def test_a_model_directory_that_does_not_fit_on_the_disk_is_named(trained, tmp_path):
    # RLIMIT_FSIZE fails a write past its size like a full disk (EFBIG), and Keras's save then names no file:
    # the retrain's error event read "cannot use a file: No space left on device".
    base, _, _ = trained
    script = textwrap.dedent(f"""
        import resource, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        import keras
        from knyang_cam import model_dir
        from train.export import write_model_dir
        info = model_dir.read({str(base / "models" / "v1")!r})
        model = keras.models.load_model(info.keras_path, compile=False)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (16_000, 16_000))
        try:
            write_model_dir(model, info, {str(tmp_path / "v2")!r}, tflite=info.tflite_path.read_bytes())
        except Exception as e:
            print(type(e).__name__, e)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    expected = f"OutputError cannot write the model directory {tmp_path / 'v2'}: File too large"
    assert result.stdout.startswith(expected), result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == [], "no staging folder is left"


def test_a_retrain_on_a_dataset_root_not_made_yet_names_the_setting(tmp_path):
    from knyang_cam.background_retrain import BackgroundRetrain

    # A first `t` before any crop was labelled: it read "dataset folder not found: data/mycats", not which setting.
    job = BackgroundRetrain(tmp_path / "mycats", tmp_path / "models")
    assert job.start(ROOT / "models" / "knyang")
    outcome = job.wait(timeout=180)
    assert outcome is not None and not outcome.accepted
    assert f"retraining failed: app.dataset_root {tmp_path / 'mycats'} not found" in outcome.message, outcome.message


def test_t_right_after_a_swap_says_the_last_retrain_is_closing_not_running(tmp_path, monkeypatch):
    from knyang_cam import background_retrain

    # A trainer that tells its result at once, then takes a while to exit, as TensorFlow's teardown does.
    _shadow_trainer(tmp_path, monkeypatch, "", "import json, sys, time\n"
                    "print(json.dumps({'event': 'done', 'out': 'x', 'accepted': False, 'reason': 'test'}),\n"
                    "      flush=True)\n"
                    "time.sleep(30)\n")
    job = background_retrain.BackgroundRetrain(tmp_path / "data", tmp_path / "models")
    assert job.start(ROOT / "models" / "knyang") and not job.closing
    deadline = time.monotonic() + 60
    while (outcome := job.poll()) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert outcome is not None and outcome.message.endswith(": test")
    assert job.running and job.closing and not job.start(ROOT / "models" / "knyang")
    teacher = Teacher(config.Config(), model_dir.read(ROOT / "models" / "knyang"))
    teacher.job = job
    assert teacher.start(saver=None) == "the last retrain is still closing: press t again in a moment"
    job.close()
    assert not job.running and not job.closing


def test_a_config_path_with_a_tilde_is_the_users_folder_for_the_retrain_too(tmp_path, monkeypatch):
    """app.dataset_root: ~/cats and retrain.models_dir: ~/models: the label keys save into ~/cats, so the
    retrain must read ~/cats (not a folder named '~' of the current one) and the app must find its model."""
    from knyang_cam import background_retrain

    home, here = tmp_path / "home", tmp_path / "here"
    home.mkdir()
    here.mkdir()
    monkeypatch.setenv("HOME", str(home))
    # A trainer that tells back the --data and --out it was given.
    _shadow_trainer(tmp_path, monkeypatch, "", "import json, sys\n"
                    "a = sys.argv\n"
                    "print(json.dumps({'event': 'done', 'out': a[a.index('--out') + 1], 'accepted': True,\n"
                    "                  'reason': a[a.index('--data') + 1]}), flush=True)\n", cwd=here)
    job = background_retrain.BackgroundRetrain("~/cats", "~/models")
    assert job.start(ROOT / "models" / "knyang")
    outcome = job.wait(timeout=60)
    assert outcome is not None and outcome.accepted, outcome
    assert outcome.message.endswith(str(home / "cats")), outcome.message
    assert outcome.model.parent == home / "models"
