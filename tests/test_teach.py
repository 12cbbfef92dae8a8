"""Teaching the running app: `n` adds a cat, number keys label it, `t` retrains in the background,
and the new model is swapped in between two frames. Real loop, real retrain process, tiny model."""
from __future__ import annotations

import dataclasses
import io
import json
import time

import pytest

from clips import write_class
from knyang_cam import app, config, model_dir
from knyang_cam.sources import Synthetic
from tests.conftest import make_model_dir

pytestmark = pytest.mark.slow  # a Keras-built model and a real retrain process

CLASSES = ("Alpha", "Beta", "Gamma")


def keys_until(out: io.StringIO, script, then_quit_on: str, timeout_s: float = 180, extra_frames: int = 5):
    """Replay `script`, then wait (10 ms a frame) until `then_quit_on` is printed, run a few more
    frames, and press q. A timeout quits too, so a broken swap fails the test instead of hanging."""
    script = [ord(k) if isinstance(k, str) else k for k in script]
    state = {"after": None, "deadline": time.monotonic() + timeout_s}

    def provider(delay_ms: int) -> int:
        if script:
            return script.pop(0)
        time.sleep(0.01)
        if state["after"] is None and then_quit_on in out.getvalue():
            state["after"] = extra_frames
        if state["after"] is not None:
            state["after"] -= 1
            if state["after"] < 0:
                return ord("q")
        return ord("q") if time.monotonic() > state["deadline"] else -1

    return provider


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data = tmp_path / "data"
    for name in CLASSES:
        write_class(data / "Train", name, 8)
    model = model_dir.read(make_model_dir(tmp_path / "models" / "tiny", classes=CLASSES, size=64))
    base = config.load()
    cfg = dataclasses.replace(
        base,
        app=dataclasses.replace(base.app, dataset_root=str(data), snapshots_dir=str(tmp_path / "snaps")),
        regions=dataclasses.replace(base.regions, crop="center"),  # generated frames: no cat for the finder
        retrain=dataclasses.replace(base.retrain, models_dir=str(tmp_path / "models")),
        train=dataclasses.replace(base.train, image_size=64, batch_size=16, head_epochs=150,
                                  head_learning_rate=0.05, validation_fraction=0.25, seed=3))
    return cfg, model, data, tmp_path


def test_new_cat_is_labelled_retrained_and_swapped_in_between_frames(setup):
    cfg, model, data, tmp_path = setup
    # The new cat's photos already exist except for the crops labelled live: the synthetic frames.
    write_class(data / "Train", "Delta", 8)
    out = io.StringIO()  # the app's stdout, read by the key provider while the loop runs
    script = ["n", "D", "e", "l", "t", "x", 8, "a", 13, "4", "4", "t"]  # 8 = backspace: "Delta"
    log = tmp_path / "run.jsonl"
    status = app.run(cfg, Synthetic(160, 120, 30.0), model, log=str(log), max_frames=100_000,
                     keys=keys_until(out, script, "after frame"), out=out)
    assert status == app.EXIT_OK
    printed = out.getvalue()
    assert "validation accuracy" in printed and "accepted" in printed, printed
    # Two crops were saved under the typed name, next to the 8 photos already there.
    assert len(list((data / "Train" / "Delta").glob("*.jpg"))) == 2

    lines = [json.loads(line) for line in log.read_text().splitlines()]
    frames = [line["frame"] for line in lines]
    assert frames == list(range(len(frames))), "a frame was lost or doubled around the swap"
    class_sets = [tuple(line["regions"][0]["probs"]) for line in lines]
    assert class_sets[0] == CLASSES
    assert class_sets[-1] == ("Alpha", "Beta", "Delta", "Gamma")
    switch = next(i for i, c in enumerate(class_sets) if c != CLASSES)
    assert all(c == CLASSES for c in class_sets[:switch])
    assert all(len(c) == 4 for c in class_sets[switch:]), "every frame after the swap uses the new model"
    new_dirs = [p for p in (tmp_path / "models").iterdir() if p.name.startswith("tiny-retrained-")]
    assert len(new_dirs) == 1 and model_dir.read(new_dirs[0]).classes[2] == "Delta"


def test_quitting_during_a_retrain_stops_it_and_says_so(setup):
    cfg, model, data, tmp_path = setup
    out = io.StringIO()
    status = app.run(cfg, Synthetic(160, 120, 30.0), model, max_frames=100_000,
                     keys=keys_until(out, ["t", -1, "q"], "never printed"), out=out)
    assert status == app.EXIT_OK
    assert "quit; the retrain still running was stopped" in out.getvalue(), out.getvalue()
    assert not [p for p in (tmp_path / "models").iterdir() if "retrained" in p.name]


def test_typing_escape_cancels_without_quitting(setup):
    cfg, model, data, tmp_path = setup
    out = io.StringIO()  # the app's stdout, read by the key provider while the loop runs
    keys = ["n", "z", 27, "q"]  # Esc while typing cancels the name; only the later q quits
    frames_seen = []

    def provider(delay_ms):
        frames_seen.append(1)
        return ord(keys.pop(0)) if keys and isinstance(keys[0], str) else (keys.pop(0) if keys else -1)

    app.run(cfg, Synthetic(160, 120, 30.0), model, max_frames=50, keys=provider, out=out)
    assert len(frames_seen) == 4, "Esc in the name prompt must not quit the app"
    assert not (data / "Train" / "z").exists()


def test_auto_retrain_after_n_labels_reports_a_failed_retrain_and_keeps_the_model(setup):
    cfg, model, data, tmp_path = setup
    # An empty dataset root, then crops of one of the model's three cats: the retrain started automatically
    # fails (it would forget the other two), the app says so and goes on.
    empty = tmp_path / "empty"
    cfg = dataclasses.replace(cfg, app=dataclasses.replace(cfg.app, dataset_root=str(empty)),
                              retrain=dataclasses.replace(cfg.retrain, auto_after=2))
    out = io.StringIO()  # the app's stdout, read by the key provider while the loop runs
    log = tmp_path / "run.jsonl"
    status = app.run(cfg, Synthetic(160, 120, 30.0), model, log=str(log), max_frames=100_000,
                     keys=keys_until(out, ["1", -1, -1, "1"], "retraining failed"), out=out)
    assert status == app.EXIT_OK
    assert "has no photos of Beta, Gamma, which the current model knows" in out.getvalue(), out.getvalue()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert all(tuple(line["regions"][0]["probs"]) == CLASSES for line in lines)
