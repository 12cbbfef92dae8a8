"""The cat finder's second look (knyang_cam/cat_species.py): a found box that looks like a dog is no cat.

The shipped network on Oxford photos neither it nor the finder trained on (the bank's copies of
finder.json's held-out photos), and the way a tracked box's looks add up in `CatRegions`.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from knyang_cam import config
from knyang_cam.analyzer import Analyzer
from knyang_cam.cat_finder import FINDER_DIR, CatFinder
from knyang_cam.cat_species import SecondLook
from knyang_cam.classify import load_classifier
from knyang_cam.config import RegionsConfig
from knyang_cam.finder_model import META_FILE, SPECIES_FILE, SPECIES_META, Blob, FinderError
from knyang_cam.model_dir import read as read_model
from knyang_cam.regions import LOOKS, CatRegions, SeenCats, crops
from knyang_cam.results import UNKNOWN, Prediction, Region

ROOT = Path(__file__).resolve().parent.parent
BANK = ROOT / "train" / "bank"
CAT_FACE = Path(__file__).parent / "data" / "cat_face.jpg"  # Hwamok, one of the project's own cats
W, H = 640, 480

needs_look = pytest.mark.skipif(not (FINDER_DIR / SPECIES_FILE).is_file(),
                                reason="models/finder/species.tflite not built (python -m train.species)")


@pytest.fixture(scope="module")
def look():
    return SecondLook(FINDER_DIR)


def held_out(kind: str) -> list[np.ndarray]:
    """The bank's copies of the Oxford photos no finder network trained on."""
    names = json.loads((FINDER_DIR / META_FILE).read_text())["held_out_photos"]
    return [cv2.imread(str(BANK / kind / n)) for n in names if (BANK / kind / n).is_file()]


def square(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    side = min(h, w)
    return image[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]


def room_with(photo: np.ndarray, box) -> np.ndarray:
    img = np.empty((H, W, 3), np.uint8)
    img[:300], img[300:] = (180, 190, 200), (70, 100, 130)
    x, y, side, _ = box
    img[y:y + side, x:x + side] = cv2.resize(square(photo), (side, side), interpolation=cv2.INTER_AREA)
    return img


def logits(look, photos) -> np.ndarray:
    return look(crops(np.concatenate([cv2.resize(square(p), (320, 320)) for p in photos], axis=1),
                      [Region((320 * i, 0, 320, 320), "detect") for i in range(len(photos))], look.input_size))


@needs_look
def test_held_out_dogs_look_like_no_cat_and_held_out_cats_and_mine_like_cats(look):
    dogs, cats = held_out("dogs"), held_out("cats")
    assert len(dogs) == 46 and len(cats) == 28
    dog, cat = logits(look, dogs), logits(look, cats + [cv2.imread(str(CAT_FACE))])
    assert np.mean(dog < look.cat_below) >= 0.85, np.round(dog, 1)
    assert np.mean(cat >= look.cat_below) >= 0.95 and cat[-1] >= look.cat_below, np.round(cat, 1)


def analyzer(looks: bool) -> Analyzer:
    """The app's analysis in detect mode with the bundled model and finder, with or without the second look."""
    cfg = config.override(config.Config(), **{"regions.crop": "detect"})
    model = read_model(ROOT / "models" / "knyang")
    out = Analyzer(cfg, load_classifier(model, "litert"), model.unknown_threshold)
    if not looks:
        out.finder = CatRegions(cfg.regions, CatFinder())
    return out


@needs_look
def test_a_dog_the_finder_boxes_is_not_shown_a_cat_of_mine_in_its_place_is():
    box = (200, 120, 240, 240)

    def shown(a, frame, n=6):
        return [[p.label for p in a(frame)[0]] for _ in range(n)]

    # A held-out dog the finder alone boxes in every frame, reading "unknown".
    dog = next(d for d in held_out("dogs") if shown(analyzer(False), room_with(d, box)) == [["unknown"]] * 6)
    assert shown(analyzer(True), room_with(dog, box)) == [[]] * 6
    assert len(shown(analyzer(True), room_with(cv2.imread(str(CAT_FACE)), box))[-1]) == 1


def prediction(label: str, cat_look: bool, track_id: int = 1) -> Prediction:
    probs = (0.9, 0.1) if label == "a" else (0.5, 0.5)
    return Prediction(Region((0, 0, 10, 10), "detect", 0.99, cat_look), label, max(probs), probs, track_id)


def test_a_box_the_look_takes_for_no_cat_is_shown_only_while_it_is_named():
    seen = SeenCats(sure=0.95, flat=0.01, forget_after=30)
    assert seen([prediction(UNKNOWN, True)]) != []  # the finder was sure: a stranger's box, reading unknown
    assert seen([prediction(UNKNOWN, False)]) == []  # the same track, now taken for a dog
    assert seen([prediction("a", False)]) != []  # named one of my cats: shown whatever it looks like
    assert seen([prediction(UNKNOWN, False, track_id=2)]) == []


class ScriptedLook:
    """A second look giving the next of `values` per box it is shown: how looks add up, apart from the network
    (the shipped one is tested above, on real photos)."""

    input_size = (16, 16)

    def __init__(self, values, cat_below: float = 0.0):
        self.values, self.cat_below, self.calls = list(values), cat_below, []

    def __call__(self, batch):
        self.calls.append(len(batch))
        return np.array([self.values.pop(0) for _ in batch], np.float32)


class Boxes:
    """A finder that sees the given boxes on every frame."""

    def __init__(self, *boxes):
        self.boxes = list(boxes)

    def __call__(self, frame):
        return [Blob(b, 0.99) for b in self.boxes]


def test_a_box_s_looks_add_up_while_it_is_tracked_and_one_doubt_does_not_outweigh_them():
    look = ScriptedLook([3.0, 3.0, -4.0, -4.0, -4.0])
    regions = CatRegions(RegionsConfig(crop="detect", detect_every=1), Boxes((100, 100, 120, 120)), looks=look)
    frame = np.zeros((H, W, 3), np.uint8)
    verdicts = [[r.cat_look for r in regions(frame)] for _ in range(5)]
    # Means 3, 3, 0.67, -0.5, -1.2: the first doubt is outweighed, the looks that keep doubting win.
    assert verdicts == [[True], [True], [True], [False], [False]] and look.calls == [1] * 5


def test_a_new_box_starts_afresh_and_all_boxes_of_a_frame_are_looked_at_in_one_call():
    finder = Boxes((20, 20, 120, 120))
    look = ScriptedLook([-5.0, -5.0, 2.0, 1.0, 1.0])
    regions = CatRegions(RegionsConfig(crop="detect", detect_every=1), finder, looks=look)
    frame = np.zeros((H, W, 3), np.uint8)
    assert [r.cat_look for r in regions(frame)] == [False]
    finder.boxes.append((400, 300, 120, 120))  # far from the first: a box of its own
    assert [(r.box[0] < 200, r.cat_look) for r in regions(frame)] == [(True, False), (False, True)]
    assert look.calls == [1, 2]
    regions.reset()  # a video cut: the first box's doubts are forgotten with it
    assert [r.cat_look for r in regions(frame)] == [True, True]


def test_a_box_is_looked_at_its_first_few_detections_then_its_verdict_stands():
    look = ScriptedLook([-1.0] * LOOKS + [9.0])
    regions = CatRegions(RegionsConfig(crop="detect", detect_every=1), Boxes((100, 100, 120, 120)), looks=look)
    frame = np.zeros((H, W, 3), np.uint8)
    assert [[r.cat_look for r in regions(frame)] for _ in range(LOOKS + 3)] == [[False]] * (LOOKS + 3)
    assert look.calls == [1] * LOOKS and look.values == [9.0]


def test_between_detections_a_box_keeps_its_verdict_without_looking():
    look = ScriptedLook([-5.0])
    regions = CatRegions(RegionsConfig(crop="detect", detect_every=4), Boxes((100, 100, 120, 120)), looks=look)
    frame = np.zeros((H, W, 3), np.uint8)
    assert [[r.cat_look for r in regions(frame)] for _ in range(4)] == [[False]] * 4 and look.calls == [1]


def test_a_finder_folder_without_a_second_look_finds_as_before(tmp_path):
    for name in ("finder.tflite", "finder.json"):
        shutil.copy(FINDER_DIR / name, tmp_path / name)
    assert SecondLook.of(tmp_path) is None


@needs_look
def test_a_network_that_is_no_second_look_is_one_line_naming_it(tmp_path):
    shutil.copy(FINDER_DIR / SPECIES_META, tmp_path / SPECIES_META)
    for content in (b"junk" * 100, (FINDER_DIR / "finder.tflite").read_bytes()):  # not a network; the maps one
        (tmp_path / SPECIES_FILE).write_bytes(content)
        with pytest.raises(FinderError) as e:
            SecondLook.of(tmp_path)
        assert str(tmp_path / SPECIES_FILE) in str(e.value) and "\n" not in str(e.value), e.value


@needs_look
@pytest.mark.parametrize("text", ["{", "[]", '{"input_size": [160, 160]}', '{"input_size": [96, 96], "cat_below": 0}',
                                  '{"input_size": [160, 160], "cat_below": NaN}'])
def test_a_broken_species_json_is_one_line_naming_the_file(tmp_path, text):
    shutil.copy(FINDER_DIR / SPECIES_FILE, tmp_path / SPECIES_FILE)
    (tmp_path / SPECIES_META).write_text(text)
    with pytest.raises(FinderError) as e:
        SecondLook.of(tmp_path)
    assert str(tmp_path) in str(e.value) and "\n" not in str(e.value) and "train" in str(e.value)


@pytest.mark.slow
@pytest.mark.integration
def test_train_species_builds_a_second_look_the_app_loads_and_that_turns_dogs_away(tmp_path, shared_data,
                                                                                    shared_weights):
    from conftest import SHARED
    from train.species import main

    pets = SHARED / "data" / "oxford_pets"
    if not (pets / "annotations" / "foreground_polygons.json").is_file():
        pytest.skip(f"Oxford-IIIT Pet sample not found at {pets}")
    out = tmp_path / "finder"
    assert main(["--pets", str(pets), "--weights", str(shared_weights), "--cats", str(shared_data / "Train"),
                 "--out", str(out), "--crops", "400"]) == 0
    meta = json.loads((out / SPECIES_META).read_text())
    held = meta["held_out"]
    # Crops of the held-out fifth of the Oxford photos: most dogs turned away, nearly every cat kept.
    assert held["dogs"]["right"] >= 0.8 and held["oxford_cats"]["right"] >= 0.95, held
    look = SecondLook.of(out)
    assert look is not None and look.cat_below == meta["cat_below"]
    dog, cat = logits(look, held_out("dogs")), logits(look, [cv2.imread(str(CAT_FACE))])
    assert np.mean(dog < look.cat_below) >= 0.7 and cat[0] >= look.cat_below, (np.round(dog, 1), cat)
