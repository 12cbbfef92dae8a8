"""End to end on generated photos with a random backbone: every output file, agreement of the two
networks, the weights-download failure, the atomic swap of --out and the feature cache."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from knyang_cam import model_dir

pytestmark = pytest.mark.slow  # real training runs (Keras), most as python -m train subprocesses

ROOT = Path(__file__).resolve().parent.parent
SMALL = """train:
  image_size: 64
  alpha: 0.35
  batch_size: 8
  head_epochs: 5
  fine_tune_epochs: {fine_tune_epochs}
  patience: 1
  feature_cache: {cache}
"""


def make_photos(root: Path, n: int = 6, classes=("Nabi", "Tori")) -> Path:
    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(n):
            base = np.zeros((72, 96, 3), np.uint8)
            base[..., c % 3] = 180
            noisy = np.clip(base + rng.integers(0, 60, base.shape), 0, 255).astype(np.uint8)
            Image.fromarray(noisy).save(folder / f"{k:02d}.jpg")
    return root


def small_config(tmp_path: Path, fine_tune_epochs: int = 1) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL.format(cache=tmp_path / "cache", fine_tune_epochs=fine_tune_epochs))
    return path


def run_train(*args, env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "train", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny training run (odd files mixed in) shared by the checks below."""
    tmp = tmp_path_factory.mktemp("e2e")
    data = make_photos(tmp / "cats")
    Image.new("CMYK", (90, 70), (0, 200, 200, 0)).save(data / "Nabi" / "cmyk.jpg")
    Image.new("LA", (80, 80), (90, 128)).save(data / "Tori" / "grey-alpha.png")
    (data / "Tori" / "empty.jpg").write_bytes(b"")
    (data / "Nabi" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    out = tmp / "models" / "cats"
    r = run_train("--data", data, "--out", out, "--weights", "none", "--config", small_config(tmp))
    assert r.returncode == 0, r.stderr[-3000:]
    return out, r


def test_writes_every_file_of_the_model_directory(trained):
    out, r = trained
    for name in ("model.keras", "model.tflite", "model.json", "report/metrics.json",
                 "report/confusion.png", "report/curves.png", "report/misclassified.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    info = model_dir.read(out, need=(model_dir.KERAS_FILE, model_dir.TFLITE_FILE))
    assert info.classes == ("Nabi", "Tori") and info.input_size == (64, 64)
    assert 0.3 <= info.unknown_threshold <= 0.9
    assert info.backbone["name"] == "MobileNetV2" and info.backbone["alpha"] == 0.35
    assert 0.0 <= info.metrics["val_accuracy"] <= 1.0 and info.metrics["test_accuracy"] is None
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    assert set(metrics["validation"]["per_class"]) == {"Nabi", "Tori"}
    assert np.array(metrics["validation"]["confusion_matrix"]["counts"]).shape == (2, 2)
    assert "open-set score" in metrics["unknown_threshold"]["how"]
    # No bank ships for this backbone: it computed one from the shipped photos of other animals.
    assert "the bank of other animals for this backbone" in r.stderr
    assert info.familiarity["other_animals"] >= 1  # random features: near-duplicates merge into few rows
    # ... and its head learnt them as one class more: every bank crop, whole (the gate merges its own rows).
    from train import negatives, recipe
    from train.model import HEAD_NAME

    bank_crops = len(negatives.photos()) * len(recipe.BANK_VIEWS)
    assert bank_crops > 0 and metrics["dataset"]["other_animals_in_head"] == bank_crops
    import keras

    head = keras.models.load_model(out / "model.keras", compile=False).get_layer(HEAD_NAME)
    assert head.units == len(info.classes) + 1 and "probability of another animal" in info.familiarity["how"]
    assert "cross-validation" in metrics["selected_on"]
    assert metrics["warnings"] and "Nabi has only" in metrics["warnings"][0]  # 6 photos: thin
    assert set(metrics["phases"]) == {"head", "fine-tune"}
    skipped = {Path(s["file"]).name for s in metrics["skipped"]}
    assert skipped == {"empty.jpg", "broken.png"}
    assert "broken.png" in r.stderr and "empty.jpg" in r.stderr
    assert "wrote" in r.stdout and "Traceback" not in r.stderr
    # The last line leads with what the app shows (unknown counts as wrong), the report's figure beside it.
    named = re.search(r"validation photos named right ([0-9.]+) \(unknown counts as wrong", r.stdout)
    assert named and float(named[1]) == pytest.approx(metrics["validation_named_right"], abs=5e-4)
    assert f"top class alone {info.metrics['val_accuracy']:.3f}" in r.stdout


def test_keras_and_tflite_give_the_same_probabilities(trained):
    import keras

    from knyang_cam.classify import load_classifier

    out, _ = trained
    x = np.random.default_rng(1).uniform(0, 255, (3, 64, 64, 3)).astype(np.float32)
    ref = keras.models.load_model(out / "model.keras", compile=False)(x, training=False).numpy()
    got = load_classifier(model_dir.read(out), backend="litert").predict(x)
    assert ref.shape == got.shape == (3, 2)
    np.testing.assert_allclose(ref.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_evaluate_cli_scores_a_model_directory(trained, tmp_path):
    out, _ = trained
    data = make_photos(tmp_path / "more", n=3)
    target = tmp_path / "eval.json"
    r = subprocess.run([sys.executable, "-m", "train.evaluate", "--model", str(out), "--data", str(data),
                        "--json", str(target)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "accuracy" in r.stdout and "Nabi" in r.stdout
    result = json.loads(target.read_text())
    assert result["n"] == 6 and set(result["per_class"]) == {"Nabi", "Tori"}


def test_evaluate_scores_held_out_photos_without_a_train_folder(trained, tmp_path, capsys):
    """ROOT/Test/<cat>/ alone (the photos kept aside): 'Test' was read as a cat the model does not know."""
    from train.evaluate import main as evaluate_main

    out, _ = trained
    held = tmp_path / "held"
    make_photos(held / "Test", n=2)
    target = tmp_path / "eval.json"
    assert evaluate_main(["--model", str(out), "--data", str(held), "--json", str(target)]) == 0, capsys.readouterr()
    result = json.loads(target.read_text())
    assert result["n"] == 4 and set(result["per_class"]) == {"Nabi", "Tori"}


def test_evaluate_reads_a_photo_as_the_app_does(trained, tmp_path):
    """Its centre square in the app's views (1, 0.8, 0.64 of it about its centre), the surest counting:
    a new user's evaluate said 10 of 20 strangers read unknown where the app showed 2 (one view is stricter)."""
    import keras

    from train.data import Split, View, crop_view
    from train.evaluate import app_probs, decode_for_app, named_right
    from train.model import infer

    out, _ = trained
    info = model_dir.read(out, need=(model_dir.KERAS_FILE,))
    model = keras.models.load_model(info.keras_path, compile=False)
    data = make_photos(tmp_path / "more", n=3)
    paths = sorted(data.rglob("*.png")) + sorted(data.rglob("*.jpg"))
    images = decode_for_app(Split(tuple(paths), (0,) * len(paths)), info)
    got = app_probs(model, images.photos, info.input_size[0])
    for photo, row in zip(images.photos, got):
        views = infer(model, np.stack([crop_view(photo, View(f), info.input_size[0]) for f in (1.0, 0.8, 0.64)]))
        np.testing.assert_allclose(row, views[np.argmax(views.max(axis=1))], atol=1e-6)
    labels = got.argmax(axis=1)
    assert named_right(got, labels, 0.0) == 1.0 and named_right(got, labels, 1.01) == 0.0


# Offline for sure, with an empty Keras cache (KERAS_HOME): a proxy that refuses every connection.
OFFLINE = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "http_proxy": "http://127.0.0.1:9", "NO_PROXY": "", "no_proxy": ""}


def test_failed_imagenet_download_names_weights_file(tmp_path):
    data = make_photos(tmp_path / "cats", n=3)
    env = {"KERAS_HOME": str(tmp_path / "keras"), **OFFLINE}
    r = run_train("--data", data, "--out", tmp_path / "m", "--config", small_config(tmp_path), env=env)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--weights FILE" in errors[0] and "--weights bundled" in errors[0], r.stderr[-2000:]
    assert not (tmp_path / "m").exists()
    # stdout is for the one summary line; Keras' "Downloading data from ..." is what it does: stderr.
    assert r.stdout == "" and "Downloading data from" in r.stderr


def test_weights_bundled_trains_offline_on_the_bundled_models_base(tmp_path):
    """Without internet and without a weights file, --weights bundled trains on the base every install ships."""
    import keras

    from train.model import BASE_NAME, EXTRACTOR_NAME, bundled_model_file

    data = make_photos(tmp_path / "cats", n=3)
    config = tmp_path / "wide.yaml"
    config.write_text(small_config(tmp_path).read_text().replace("alpha: 0.35", "alpha: 1.0"))
    env = {"KERAS_HOME": str(tmp_path / "keras"), **OFFLINE}
    r = run_train("--data", data, "--out", tmp_path / "m", "--config", config, "--weights", "bundled", env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    info = model_dir.read(tmp_path / "m", need=(model_dir.KERAS_FILE,))
    assert json.loads((tmp_path / "m" / "model.json").read_text())["backbone"]["weights"].startswith("bundled")

    def base(file):
        return keras.models.load_model(file, compile=False).get_layer(EXTRACTOR_NAME).get_layer(BASE_NAME)

    ours, shipped = base(info.keras_path), base(bundled_model_file())
    assert ours.input_shape[1:3] == (64, 64) and shipped.input_shape[1:3] == (160, 160)
    for a, b in zip(ours.get_weights(), shipped.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # The bundled base is alpha 1.0: another width cannot hold its weights, and says which width it needs.
    r = run_train("--data", data, "--out", tmp_path / "narrow", "--config", small_config(tmp_path),
                  "--weights", "bundled", env=env)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert [line for line in r.stderr.splitlines() if line.startswith("error:")] == \
        ["error: --weights bundled is MobileNetV2 alpha 1.0: set train.alpha to 1.0 (it is 0.35)"], r.stderr[-2000:]
    assert not (tmp_path / "narrow").exists()


def test_weights_bundled_are_the_shared_backbones_weights(shared_weights):
    """The bundled model was trained on the shared backbone: --weights bundled gives its features (and its
    feature cache and bank of other animals) where that file is missing."""
    from train import features
    from train.model import Backbone, build

    one, other = (build(Backbone(w), 5).features for w in ("bundled", str(shared_weights)))
    assert features.identity(one) == features.identity(other)


def test_missing_weights_file_is_a_user_error(tmp_path):
    data = make_photos(tmp_path / "cats", n=3)
    r = run_train("--data", data, "--weights", tmp_path / "nope.weights.h5",
                  "--config", small_config(tmp_path))
    assert r.returncode == 2 and "weights file not found" in r.stderr and "Traceback" not in r.stderr


def test_a_retrain_on_the_same_photos_gives_back_the_same_head(tmp_path):
    """The `t` key's retrain learns from the crops `python -m train` learnt from, so on an unchanged
    dataset it is accepted with the head it started from (fewer crops gave a head the check refused)."""
    import keras

    from knyang_cam.config import TrainConfig
    from train.model import HEAD_NAME
    from train.pipeline import train_model
    from train.retrain import retrain

    data = make_photos(tmp_path / "cats", n=8)
    cfg = TrainConfig(image_size=64, alpha=0.35, batch_size=8, head_epochs=20, fine_tune_epochs=0)
    train_model(data, tmp_path / "first", "none", cfg, cache_dir=tmp_path / "cache")
    result = retrain(tmp_path / "first", data, tmp_path / "again", cfg, cache_dir=tmp_path / "cache")
    assert result.accepted and result.new_accuracy == result.old_accuracy, result.reason
    # The first model learnt its validation photos: it is held to the figure it was scored with.
    assert "at its training" in result.reason
    assert result.features_computed == 0  # every crop it learns from was computed by the training
    first, again = (keras.models.load_model(tmp_path / name / "model.keras", compile=False).get_layer(HEAD_NAME)
                    for name in ("first", "again"))
    for a, b in zip(first.get_weights(), again.get_weights()):
        np.testing.assert_allclose(b, a, atol=1e-6)


def test_a_retrain_after_adding_photos_compares_on_the_photos_held_out_both_times(tmp_path):
    """A household without a Validation folder: the model learnt its validation photos, so a retrain is held to
    what it scored on them at its training, photo by photo, on those still held out (not on other photos)."""
    from knyang_cam.config import TrainConfig
    from train.data import find_images
    from train.pipeline import train_model
    from train.retrain import retrain

    data = make_photos(tmp_path / "cats", n=8)
    cfg = TrainConfig(image_size=64, alpha=0.35, batch_size=8, head_epochs=20, fine_tune_epochs=0)
    first = train_model(data, tmp_path / "first", "none", cfg, cache_dir=tmp_path / "cache")
    before = set(find_images(data, cfg.validation_fraction, cfg.seed).validation.paths)
    for k in range(2):  # two snapshots saved with the app's keys (its file names)
        shutil.copy(data / "Nabi" / f"0{k}.jpg", data / "Nabi" / f"20261205-101500-00000{k}.jpg")
    after = set(find_images(data, cfg.validation_fraction, cfg.seed).validation.paths)
    result = retrain(tmp_path / "first", data, tmp_path / "again", cfg, cache_dir=tmp_path / "cache")
    assert f"on the same {len(before & after)} photos (at its training)" in result.reason, result.reason
    assert len(before & after) >= 2
    assert result.accepted and result.old_accuracy == first.val_accuracy == 1.0, result.reason


def test_learn_validation_learns_a_validation_folder_once_scored_and_its_retrain_does_too(tmp_path):
    """A Validation folder is learnt once scored (train.learn_validation), or kept out of the model to judge with;
    a retrain of a model that learnt it learns it again and gives back its head."""
    import keras

    from knyang_cam.config import TrainConfig
    from train.model import HEAD_NAME
    from train.retrain import retrain

    data = tmp_path / "cats"
    make_photos(data / "Train", n=6)
    make_photos(data / "Validation", n=3)
    cfg = small_config(tmp_path, fine_tune_epochs=0)
    judge_with = tmp_path / "judge.yaml"
    judge_with.write_text(cfg.read_text() + "  learn_validation: false\n")
    for name, config in (("judged", judge_with), ("learnt", cfg)):
        r = run_train("--data", data, "--out", tmp_path / name, "--weights", "none", "--config", config)
        assert r.returncode == 0, r.stderr[-2000:]
    judged, learnt = (json.loads((tmp_path / name / "report" / "metrics.json").read_text())
                      for name in ("judged", "learnt"))
    assert judged["validation_learnt"] is False and judged["dataset"]["learnt_photos"] == 12
    assert learnt["validation_learnt"] is True and learnt["dataset"]["learnt_photos"] == 18
    assert learnt["dataset"]["learnt_photos_per_class"] == {"Nabi": 9, "Tori": 9}
    # Scored before they were learnt: the same validation figure either way.
    assert learnt["validation_named_right"] == judged["validation_named_right"]
    assert "then learnt from all 18 photos" in r.stderr
    heads = [keras.models.load_model(tmp_path / name / "model.keras", compile=False).get_layer(HEAD_NAME)
             for name in ("judged", "learnt")]
    assert not np.allclose(heads[0].get_weights()[0], heads[1].get_weights()[0])

    # Scoring the photos it learnt says so (their figures are memories); the model that kept them out is judged.
    for name, learnt_scored in (("judged", 0), ("learnt", 6)):
        r = subprocess.run([sys.executable, "-m", "train.evaluate", "--model", str(tmp_path / name), "--data",
                            str(data), "--json", str(tmp_path / f"{name}.json")], cwd=ROOT, capture_output=True,
                           text=True, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        assert r.returncode == 0, r.stderr[-2000:]
        assert json.loads((tmp_path / f"{name}.json").read_text())["learnt_photos_scored"] == learnt_scored
        assert ("the model learnt 6 of these 6 photos" in r.stderr) == bool(learnt_scored), r.stderr[-2000:]
    small = TrainConfig(image_size=64, alpha=0.35, batch_size=8, head_epochs=5, fine_tune_epochs=0)
    result = retrain(tmp_path / "learnt", data, tmp_path / "again", small, cache_dir=tmp_path / "cache")
    assert result.accepted and "at its training" in result.reason, result.reason
    again = json.loads((tmp_path / "again" / "report" / "metrics.json").read_text())
    assert again["validation_learnt"] is True and again["dataset"]["learnt_photos"] == 18
    head = keras.models.load_model(tmp_path / "again" / "model.keras", compile=False).get_layer(HEAD_NAME)
    for a, b in zip(heads[1].get_weights(), head.get_weights()):
        np.testing.assert_allclose(b, a, atol=1e-6)


def test_out_into_existing_model_dir_is_replaced_when_complete(trained, tmp_path):
    out, _ = trained
    before = json.loads((out / "model.json").read_text())
    data = make_photos(tmp_path / "three", n=4, classes=("Nabi", "Tori", "Yuki"))
    time.sleep(1)  # model.json's "created" has one-second resolution
    # Head only: the swap is what is tested here, not fine-tuning again.
    r = run_train("--data", data, "--out", out, "--weights", "none",
                  "--config", small_config(tmp_path, fine_tune_epochs=0))
    assert r.returncode == 0, r.stderr[-2000:]
    after = model_dir.read(out)
    assert after.classes == ("Nabi", "Tori", "Yuki") and after.created != before["created"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["cats"]  # no staging or old copies left


def test_failed_export_leaves_the_old_model_intact(tiny_model_dir, tmp_path):
    import shutil

    from knyang_cam.model_dir import ModelInfo
    from tests.conftest import build_tiny_model
    from train.export import write_model_dir

    target = tmp_path / "models" / "tiny"
    shutil.copytree(tiny_model_dir, target)
    snapshot = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    info = ModelInfo(path=target, classes=("X", "Y"), input_size=(64, 64), unknown_threshold=0.5)

    def crash(report_dir: Path) -> None:
        (report_dir / "metrics.json").write_text("{half")
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C while the report was written

    with pytest.raises(KeyboardInterrupt):
        write_model_dir(build_tiny_model(2), info, target, crash)
    now = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert now == snapshot
    assert sorted(p.name for p in target.parent.iterdir()) == ["tiny"]


def test_feature_cache_computes_only_new_or_changed_files(tmp_path):
    from train import features, fit
    from train.model import Backbone, build

    data = make_photos(tmp_path / "cats", n=4)
    backbone = Backbone("none", 64, 0.35)
    fit.seed_everything(0)
    network = build(backbone, 2)
    identity = features.identity(network.features)  # the key training itself uses

    def listing():
        paths = sorted(data.rglob("*.jpg"))
        return paths, [int(p.parent.name == "Tori") for p in paths]

    paths, labels = listing()
    first = features.features_for(paths, labels, network.features, backbone,
                                  features.FeatureCache(tmp_path / "cache", identity))
    assert first.computed == 8 and first.vectors.shape == (8, network.features.output_shape[-1])

    for c, name in enumerate(("Nabi", "Tori")):  # one new photo per class
        Image.new("RGB", (96, 72), (200, 30 + 100 * c, 90)).save(data / name / "new.jpg")
    edited = paths[0]
    Image.new("RGB", (80, 80), (10, 200, 10)).save(edited)

    paths, labels = listing()
    cache = features.FeatureCache(tmp_path / "cache", identity)  # reloaded from disk
    assert len(cache) == 8
    second = features.features_for(paths, labels, network.features, backbone, cache)
    assert second.computed == 3 and len(second.paths) == 10
    fresh = features.features_for(paths, labels, network.features, backbone, None)
    np.testing.assert_allclose(second.vectors, fresh.vectors, atol=1e-4)
    assert features.features_for(paths, labels, network.features, backbone, cache).computed == 0
    # The same photos copied elsewhere, with new modification times (a backup restored, a fresh
    # checkout): the cache knows them by their bytes.
    copy = shutil.copytree(data, tmp_path / "copied", copy_function=shutil.copyfile)
    moved = [copy / p.relative_to(data) for p in paths]
    assert all(p.stat().st_mtime_ns != q.stat().st_mtime_ns for p, q in zip(paths, moved))
    again = features.features_for(moved, labels, network.features, backbone, cache)
    assert again.computed == 0
    np.testing.assert_array_equal(again.vectors, second.vectors)
    # A different backbone identity never reuses these vectors.
    assert len(features.FeatureCache(tmp_path / "cache", identity + "-other")) == 0


def test_feature_cache_drops_entries_keyed_the_old_way(tmp_path):
    """Keys of path, size and mtime can never match again: they are not served and leave at the next save."""
    from train import features

    photo = tmp_path / "a.jpg"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(photo)
    cache = features.FeatureCache(tmp_path, "id")
    np.savez(cache.path, keys=np.array([f"{photo}|{photo.stat().st_size}|123", features.file_key(photo)]),
             vectors=np.array([[1.0, 1.0], [2.0, 2.0]], np.float32))
    cache = features.FeatureCache(tmp_path, "id")
    assert len(cache) == 1 and cache.get(features.file_key(photo)).tolist() == [2.0, 2.0]
    cache.put(features.file_key(photo) + "#other", np.zeros(2))
    cache.save()
    with np.load(cache.path) as f:
        assert all(k.startswith(features.KEY_PREFIX) for k in f["keys"].tolist()) and len(f["keys"]) == 2


@pytest.mark.parametrize("keys, vectors", [
    (["sha256:a|1", "sha256:b|1"], np.ones((1, 4), np.float32)),  # a vector short
    (["sha256:a|1"], np.ones((1, 3), np.float32)),  # not as wide as the backbone's features
    (["sha256:a|1"], np.array(["x"])),
    ([["sha256:a|1"]], np.ones((1, 4), np.float32)),
])
def test_a_damaged_feature_cache_is_ignored_with_a_warning(tmp_path, capsys, keys, vectors):
    """Read, such a file ended the training in an IndexError, ValueError or AttributeError traceback."""
    from train import features

    np.savez(features.FeatureCache(tmp_path, "extractor-x-s160-d4").path, keys=np.array(keys), vectors=vectors)
    assert len(features.FeatureCache(tmp_path, "extractor-x-s160-d4")) == 0
    assert "warning: ignoring unreadable feature cache" in capsys.readouterr().err


def test_head_fit_is_repeatable_and_weighs_classes_equally():
    from train import recipe

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 64)).astype(np.float32)
    y = x[:, :3].argmax(axis=1).astype(np.int32)  # linearly separable
    first = recipe.fit_softmax(x[:300], y[:300], 3, 1e-3, 100, 0.05, curve_every=10, val=(x[300:], y[300:]))
    again = recipe.fit_softmax(x[:300], y[:300], 3, 1e-3, 100, 0.05)
    np.testing.assert_array_equal(first[0], again[0])
    assert first[2]["val_accuracy"][-1] > 0.75 and len(first[2]["loss"]) == 10
    # 3 photos of one class against 100 of another weigh as much in the loss: all three are learnt.
    few = np.concatenate([x[y == 0][:100], x[y == 1][:3]])
    labels = np.array([0] * 100 + [1] * 3)
    np.testing.assert_allclose(recipe.class_weights(labels, 2), [103 / 200, 103 / 6])
    kernel, bias, _ = recipe.fit_softmax(few, labels, 2, 1e-3, 200, 0.05)
    assert (recipe.softmax(few[100:] @ kernel + bias).argmax(1) == 1).all()


def test_head_fit_starts_from_a_given_head():
    """The refit on every photo starts from the head fitted without the validation photos: the start is
    the same dense layer whatever the new rows' standardisation, and a few steps from it fit them."""
    from train import recipe

    rng = np.random.default_rng(1)
    x = (rng.normal(size=(400, 32)) * rng.uniform(0.5, 3, 32) + rng.normal(size=32)).astype(np.float32)
    y = x[:, :3].argmax(axis=1).astype(np.int32)
    kernel, bias, _ = recipe.fit_softmax(x[:300], y[:300], 3, 1e-3, 100, 0.05)
    still = recipe.fit_softmax(x, y, 3, 1e-3, 5, 0.0, start=(kernel, bias))  # no step moves it
    np.testing.assert_allclose(x @ still[0] + still[1], x @ kernel + bias, atol=1e-3)
    scratch = recipe.fit_softmax(x, y, 3, 1e-3, 100, 0.05)
    warm = recipe.fit_softmax(x, y, 3, 1e-3, 30, 0.05, start=(kernel, bias))
    agree = np.mean((x @ warm[0] + warm[1]).argmax(1) == (x @ scratch[0] + scratch[1]).argmax(1))
    assert agree >= 0.97 and np.mean((x @ warm[0] + warm[1]).argmax(1) == y) >= 0.95


def test_a_class_with_three_photos_trains_and_is_reported_thin(tmp_path):
    data = make_photos(tmp_path / "cats", n=8)
    for extra in sorted((data / "Tori").glob("*.jpg"))[3:]:
        extra.unlink()
    r = run_train("--data", data, "--out", tmp_path / "m", "--weights", "none",
                  "--config", small_config(tmp_path, fine_tune_epochs=0))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "class Tori has only 3 photos to learn from" in r.stderr
    metrics = json.loads((tmp_path / "m" / "report" / "metrics.json").read_text())
    # One photo of each is held out to score the recipe, then the model learns it too.
    assert metrics["dataset"]["train_photos_per_class"] == {"Nabi": 6, "Tori": 2}
    assert metrics["dataset"]["learnt_photos_per_class"] == {"Nabi": 8, "Tori": 3}
    assert metrics["validation_learnt"] is True
    assert any("Tori" in w for w in metrics["warnings"])


def test_a_broken_test_photo_is_skipped_and_listed_like_the_others(tmp_path):
    data = tmp_path / "cats"
    make_photos(data / "Train")
    make_photos(data / "Validation", n=2)
    make_photos(data / "Test", n=2)
    (data / "Test" / "Tori" / "broken.jpg").write_bytes(b"\xff\xd8 not a photo")
    out = tmp_path / "m"
    r = run_train("--data", data, "--out", out, "--weights", "none", "--config", small_config(tmp_path, 0))
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"skipped {data / 'Test' / 'Tori' / 'broken.jpg'}" in r.stderr
    assert "1 files skipped" in r.stdout
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    assert [Path(s["file"]).name for s in metrics["skipped"]] == ["broken.jpg"]
