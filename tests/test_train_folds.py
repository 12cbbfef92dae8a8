"""Folds and splits keep bursts and near-duplicates on one side (train/folds.py, train/data.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from train import data, folds


def _burst_paths(rng):
    paths, labels = [], []
    for c, cat in enumerate(("Nabi", "Tori", "Yuki")):
        for burst in range(6):
            for k in range(int(rng.integers(1, 5))):
                paths.append(Path(cat) / f"{1587034000000 + 1000 * burst + c}-{k}.jpg")
                labels.append(c)
    return paths, np.array(labels)


def test_folds_keep_each_burst_and_near_duplicate_on_one_side_and_repeat():
    rng = np.random.default_rng(0)
    paths, labels = _burst_paths(rng)
    vectors = rng.normal(size=(len(paths), 16))
    vectors[5] = vectors[30] + 1e-3  # a near-duplicate across bursts (same class?)
    labels[30] = labels[5]
    groups = folds.groups(paths, vectors, labels)
    assert groups[5] == groups[30]
    assert folds.burst_of(Path("Nabi/1587034022066-3.jpg")) == "Nabi/1587034022066"
    for seed in (0, 1):
        fold = folds.grouped_folds(groups, labels, 4, seed)
        for g in np.unique(groups):
            assert len(set(fold[groups == g])) == 1, "a group on both sides"
        for f in range(4):
            assert len(set(labels[fold == f])) == 3, "every fold holds every cat"
        np.testing.assert_array_equal(fold, folds.grouped_folds(groups, labels, 4, seed))
    assert not np.array_equal(folds.grouped_folds(groups, labels, 4, 0), folds.grouped_folds(groups, labels, 4, 1))


def test_near_duplicates_of_different_cats_are_not_joined():
    vectors = np.ones((2, 4))
    assert len(set(folds.groups([Path("a.jpg"), Path("b.jpg")], vectors, [0, 1]))) == 2
    assert len(set(folds.groups([Path("a.jpg"), Path("b.jpg")], vectors, [0, 0]))) == 1


def test_the_one_folder_per_cat_split_keeps_bursts_together(tmp_path):
    for cat in ("Nabi", "Tori"):
        (tmp_path / cat).mkdir()
        for burst in range(5):
            for k in range(3):
                Image.new("RGB", (8, 8)).save(tmp_path / cat / f"{burst}00{burst}-{k}.jpg")
    ds = data.find_images(tmp_path, validation_fraction=0.2, seed=1)
    held = {folds.burst_of(p) for p in ds.validation.paths}
    assert held and not held & {folds.burst_of(p) for p in ds.train.paths}
    assert len(ds.validation) == 6  # one whole burst of three per cat (20% of 15 photos)


def test_validation_photos_near_training_ones_are_counted():
    from train.pipeline import _near_training

    rng = np.random.default_rng(0)
    train = rng.normal(size=(20, 64)).astype(np.float32)  # pooled rows: average half, then max half
    copy = train[3] + 0.05 * rng.normal(size=64).astype(np.float32)  # the same scene, a frame later
    other = rng.normal(size=(4, 64)).astype(np.float32)
    assert _near_training(np.vstack([copy, other]), train) == 1
    assert _near_training(other, train) == 0
    assert _near_training(other[:0], train) == 0
