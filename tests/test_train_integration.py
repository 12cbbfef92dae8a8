"""On the real five-cat dataset with the shared backbone (skipped when ../shared is absent)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from knyang_cam import model_dir

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.integration, pytest.mark.slow]

# The default recipe with a cold feature cache of its own (phase (b), off by default, is
# tested on tiny data in test_train_e2e). How long it takes is bench/train_speed.py's to say: 2-core
# machines here differ 5-fold (1 min 35 s to 7 min 20 s before the backbone ran on LiteRT), and CI's took
# over 480 s once, so the limit only catches a hang.
SHORT = """train:
  feature_cache: {cache}
"""


def test_training_on_shared_data_reaches_090(shared_data, shared_weights, tmp_path):
    config = tmp_path / "short.yaml"
    config.write_text(SHORT.format(cache=tmp_path / "cache"))
    out = tmp_path / "knyang"
    r = subprocess.run([sys.executable, "-m", "train", "--data", str(shared_data), "--out", str(out),
                        "--weights", str(shared_weights), "--config", str(config)],
                       cwd=ROOT, capture_output=True, text=True, timeout=1200,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert r.returncode == 0, r.stderr[-3000:]
    info = model_dir.read(out)
    assert info.classes == ("Chungdam", "Eve", "Hwamok", "Leo", "Ming")
    assert info.metrics["val_accuracy"] >= 0.9
    assert info.backbone["weights"] == shared_weights.name
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    assert metrics["validation"]["n"] == 50 and metrics["skipped"] == []
    # Scored first, then learnt (train.learn_validation): 8 of Chungdam's 10 are of other days.
    assert info.metrics["train_photos"] == 368 and info.metrics["learnt_photos"] == 418
    assert metrics["validation_learnt"] is True
    # Validation shares bursts with Train (1587034204110-28/-29): said, with the count.
    near = [w for w in metrics["warnings"] if "near-duplicates of training photos" in w]
    assert len(near) == 1 and 1 <= int(near[0].split()[0]) <= 10, metrics["warnings"]  # 3 here


def test_bundled_model_names_the_validation_photos(shared_data, tmp_path):
    """The shipped files, run by train.evaluate, on the 50 Validation photos (top class).

    The bundled model learnt them once scored (0.94 then, report/metrics.json), so evaluate says their figures
    are memories; the recipe is not chosen on them (the cross-validated test below is the real check).
    """
    target = tmp_path / "eval.json"
    r = subprocess.run([sys.executable, "-m", "train.evaluate", "--model", str(ROOT / "models" / "knyang"),
                        "--data", str(shared_data), "--split", "validation", "--json", str(target)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(target.read_text())
    assert result["n"] == 50 and result["accuracy"] >= 0.92
    assert result["learnt_photos_scored"] == 50 and "the model learnt 50 of these 50 photos" in r.stderr


def test_cross_validated_accuracy_of_the_recipe(shared_data, shared_weights, tmp_path):
    """The recipe on photos it never saw, folds grouped by burst (not the 50 Validation photos alone)."""
    target = tmp_path / "quality.json"
    r = subprocess.run([sys.executable, "bench/quality.py", "--data", str(shared_data), "--weights",
                        str(shared_weights), "--folds", "5", "--repeats", "1", "--no-loco", "--json", str(target)],
                       cwd=ROOT, capture_output=True, text=True, timeout=3600,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert r.returncode == 0, r.stderr[-3000:]
    figures = {k: v[0] for k, v in json.loads(target.read_text())["figures"].items()}
    # Under what this recipe measured (5 grouped folds, seed 0: top class 0.938 on centre squares, 0.926 on
    # clip frames; as the app sees them, the surest of regions.zooms views: centre squares 0.933 named right,
    # clip frames 0.894, photos pasted into rooms 0.914; other cats 0.937 and dogs 0.984 read unknown; the
    # same to the fourth decimal from TensorFlow's features and LiteRT's): a regression of the recipe fails
    # here, fold noise does not (the folds and the fit are repeatable).
    assert figures["centre_argmax"] >= 0.91, figures
    assert figures["clip_argmax"] >= 0.90, figures
    assert figures["centre_views"] >= 0.90, figures  # named right, "unknown" counted as wrong
    assert figures["clip_views"] >= 0.84, figures
    assert figures["scene_views"] >= 0.88, figures  # the crop of a found cat, room around it (train/scenes.py)
    assert figures["stranger_views"] >= 0.91 and figures["dog_views"] >= 0.96, figures


def test_a_household_whose_cats_are_in_the_bank_is_named(shared_weights, tmp_path):
    """The bank's Oxford-IIIT Pet photos are photos a user may have: trained on three of its breeds as three
    cats, the model left them out of its other animals, or every photo of them read unknown (named right 0.00
    of the validation photos, against the top class's 0.67, before)."""
    import shutil

    from knyang_cam.config import TrainConfig
    from train import negatives, recipe
    from train.pipeline import train_model

    breeds = ("Abyssinian", "Bengal", "Birman")
    bank = negatives.photos()
    for breed in breeds:
        (tmp_path / "cats" / breed).mkdir(parents=True)
        for photo in (p for p in bank if p.name.startswith(breed + "_")):
            shutil.copy(photo, tmp_path / "cats" / breed / photo.name)
    dogs = [p for p in bank if p.parent.name == "dogs"][:20]
    theirs = [p for p in bank if p.name.startswith(breeds)]
    result = train_model(tmp_path / "cats", tmp_path / "m", str(shared_weights), TrainConfig(),
                         cache_dir=tmp_path / "cache", bank_photos=theirs + dogs)
    metrics = json.loads((tmp_path / "m" / "report" / "metrics.json").read_text())
    assert metrics["dataset"]["other_animals_in_head"] == len(dogs) * len(recipe.BANK_VIEWS)  # every crop of theirs out
    assert result.val_named_right >= 0.6, result  # 0.83 here
