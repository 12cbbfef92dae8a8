"""The cat finder: the shipped network on generated scenes with known boxes, blobs to boxes,
tracking between detections, and all cats of a frame in one classifier call."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from knyang_cam import config
from knyang_cam.analyzer import Analyzer
from knyang_cam.bundled import DEMO_CLIP
from knyang_cam.cat_finder import FINDER_DIR, CatFinder, boxes_from_scores
from knyang_cam.classify import load_classifier
from knyang_cam.config import RegionsConfig
from knyang_cam.finder_model import (
    META_FILE,
    TFLITE_FILE,
    Blob,
    FinderError,
    FinderMeta,
    one_cat_filling,
    split_by_fine,
    with_small_cats,
)
from knyang_cam.model_dir import read as read_model
from knyang_cam.regions import BoxTracker, CatRegions, FaceFinder, crops, make_finder, surest, zoom_factors, zoomed
from knyang_cam.smoothing import Smoother, iou, one_box_per_cat

ROOT = Path(__file__).resolve().parent.parent
# A 320x240 frame of one of the project's own cats (Hwamok); its middle square is the cat.
CAT_FACE = Path(__file__).parent / "data" / "cat_face.jpg"
W, H = 640, 480

needs_finder = pytest.mark.skipif(not (FINDER_DIR / "finder.tflite").is_file(),
                                  reason="models/finder/finder.tflite not built (python -m train.finder)")


@pytest.fixture(scope="module")
def cat_square():
    image = cv2.imread(str(CAT_FACE))
    assert image is not None
    h, w = image.shape[:2]
    return image[:, (w - h) // 2:(w - h) // 2 + h]


@pytest.fixture(scope="module")
def finder():
    return CatFinder()


def room(seed: int = 0) -> np.ndarray:
    """An empty room: a wall, a floor, a block of furniture, a little noise."""
    rng = np.random.default_rng(seed)
    img = np.empty((H, W, 3), np.float32)
    img[:300] = (180, 190, 200)
    img[300:] = (70, 100, 130)
    cv2.rectangle(img, (40, 200), (200, 380), (40, 60, 90), -1)
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def scene(cat, boxes, seed: int = 0) -> np.ndarray:
    img = room(seed)
    for x, y, side, _ in boxes:
        img[y:y + side, x:x + side] = cv2.resize(cat, (side, side), interpolation=cv2.INTER_AREA)
    return img


# ---- the shipped network on generated scenes -----------------------------------------------

@needs_finder
@pytest.mark.parametrize("box", [(40, 60, 260, 260), (380, 200, 220, 220), (250, 150, 130, 130),
                                 (470, 40, 125, 125)])
def test_a_cat_is_found_where_it_was_placed(finder, cat_square, box):
    regions = CatRegions(RegionsConfig(crop="detect"), finder)(scene(cat_square, [box]))
    assert len(regions) == 1 and regions[0].source == "detect"
    assert iou(regions[0].box, box) >= 0.5, (regions[0].box, box)


# Oxford cats the finder never trained on (finder.json's held_out_photos), shipped in train/bank/.
BANK_CATS = ROOT / "train" / "bank" / "cats"


@needs_finder
@pytest.mark.parametrize("photo,box", [("Bombay_121.jpg", (60, 300, 120, 120)), ("Birman_142.jpg", (470, 50, 120, 120)),
                                       ("Siamese_142.jpg", (300, 200, 120, 120))])
def test_a_quarter_high_cat_the_coarse_pass_misses_is_found_by_the_fine_one(finder, photo, box):
    image = cv2.imread(str(BANK_CATS / photo))
    h, w = image.shape[:2]
    side = min(h, w)
    frame = scene(image[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side], [box])
    m = finder.meta
    coarse = boxes_from_scores(finder.scores(frame), (W, H), m.threshold, m.peak, m.min_cells, m.centre_peak)
    assert not any(iou(b.box, box) >= 0.3 for b in coarse)
    found = finder(frame)
    assert len(found) == 1 and iou(found[0].box, box) >= 0.5, [b.box for b in found]


@needs_finder
def test_each_pass_takes_the_frame_s_aspect_in_whole_cells(finder):
    # 16:9 squashed into the 4:3 input made cats narrower than any the finder trained on.
    for (w, h), cells in (((854, 480), (12, 21)), ((480, 640), (16, 12)), ((W, H), (12, 16)),
                          ((1280, 720), (12, 21)), ((4000, 500), (12, 36))):
        assert finder.scores(np.zeros((h, w, 3), np.uint8)).shape[:2] == cells, (w, h)


@needs_finder
@pytest.mark.parametrize("box", [(60, 80, 240, 240), (560, 200, 230, 230), (400, 60, 140, 140)])
def test_a_cat_in_a_16_9_frame_is_found_where_it_was_placed(finder, cat_square, box):
    frame = cv2.resize(room(), (854, 480), interpolation=cv2.INTER_LINEAR)
    x, y, side, _ = box
    frame[y:y + side, x:x + side] = cv2.resize(cat_square, (side, side), interpolation=cv2.INTER_AREA)
    found = finder(frame)
    assert len(found) == 1 and iou(found[0].box, box) >= 0.5, [b.box for b in found]


@needs_finder
def test_an_empty_room_gives_no_region(finder):
    regions = CatRegions(RegionsConfig(crop="detect"), finder)
    for seed in range(3):
        regions.reset()
        assert regions(room(seed)) == []
        assert regions(np.full((H, W, 3), 128, np.uint8)) == []


class CountingClassifier:
    """The real LiteRT identity classifier, counting its calls and the crops in each."""

    def __init__(self, inner):
        self.inner, self.batches = inner, []
        self.classes, self.input_size = inner.classes, inner.input_size

    def predict(self, batch):
        self.batches.append(len(batch))
        return self.inner.predict(batch)


@needs_finder
@pytest.mark.parametrize("in_turn, batches", [(True, [6, 2, 2, 2]), (False, [6, 6, 6, 6])])
def test_two_cats_are_two_regions_classified_in_one_call(cat_square, in_turn, batches):
    cfg = config.override(config.Config(), **{"regions.crop": "detect", "regions.detector": "cats",
                                              "regions.zooms": 3, "regions.views_in_turn": in_turn})
    model = read_model(ROOT / "models" / "knyang")
    classifier = CountingClassifier(load_classifier(model, "litert"))
    analyzer = Analyzer(cfg, classifier, model.unknown_threshold)
    boxes = [(40, 120, 230, 230), (370, 130, 230, 230)]
    frame = scene(cat_square, boxes)
    for _ in range(4):
        predictions, _, _ = analyzer(frame)
    # Two cats in three views each; views in turn: a tracked cat gets one view a frame.
    assert classifier.batches == batches
    found = sorted(p.region.box for p in predictions)
    assert all(iou(f, b) >= 0.5 for f, b in zip(found, boxes)), found
    # One batch, yet each region gets its own answer: the surest of its views alone (the frame does
    # not change, so four frames of smoothing average the same numbers; in turn, the last three
    # frames saw the three views).
    factors = zoom_factors(cfg.regions.zooms, cfg.regions.zoom_step)
    for p in predictions:
        alone = classifier.inner.predict(crops(frame, zoomed([p.region], factors, W, H), classifier.input_size))
        np.testing.assert_allclose(p.probs, surest(alone, [0] * len(alone), 1)[0], atol=1e-4)
    empty = CountingClassifier(classifier.inner)
    analyzer = Analyzer(cfg, empty, model.unknown_threshold)
    assert analyzer(room())[0] == [] and empty.batches == [0]


class FixedFinder:
    """A finder that sees one "cat" at `box` with `score`, wherever the real one would look."""

    def __init__(self, box, score):
        self.blob = Blob(box, score)

    def __call__(self, frame):
        return [self.blob]


def detect_analyzer() -> Analyzer:
    """The app's analysis in detect mode with the bundled model on LiteRT."""
    cfg = config.override(config.Config(), **{"regions.crop": "detect"})
    model = read_model(ROOT / "models" / "knyang")
    return Analyzer(cfg, load_classifier(model, "litert"), model.unknown_threshold)


@needs_finder
@pytest.mark.parametrize("score, shown", [(0.92, False), (0.99, True)])
def test_an_unsure_box_the_classifier_sees_no_cat_in_is_not_shown(score, shown):
    # The real classifier on an empty room: its gate leaves the probabilities even, so a box the
    # finder was unsure of is no cat; a box it was sure of stays (a stranger reads "unknown").
    analyzer = detect_analyzer()
    box = (200, 120, 220, 220)
    analyzer.finder = CatRegions(analyzer.cfg.regions, FixedFinder(box, score))
    for _ in range(3):
        predictions, _, _ = analyzer(room())
    if shown:
        assert [p.label for p in predictions] == ["unknown"] and predictions[0].region.score == score
    else:
        assert predictions == []


@needs_finder
def test_an_unsure_box_over_my_cat_is_shown(cat_square):
    analyzer = detect_analyzer()
    box = (200, 120, 220, 220)
    analyzer.finder = CatRegions(analyzer.cfg.regions, FixedFinder(box, 0.91))
    predictions, _, _ = analyzer(scene(cat_square, [box]))
    assert [p.region.score for p in predictions] == [0.91] and max(predictions[0].probs) > 0.5


@needs_finder
def test_max_regions_keeps_the_largest(finder, cat_square):
    boxes = [(20, 40, 200, 200), (240, 40, 150, 150), (420, 280, 130, 130)]
    regions = CatRegions(RegionsConfig(crop="detect", max_regions=2), finder)(scene(cat_square, boxes))
    assert len(regions) == 2
    assert iou(regions[0].box, boxes[0]) >= 0.5


@needs_finder
def test_a_camera_back_at_another_resolution_has_its_cat_boxed_at_once(cat_square):
    # The same scene at half the size is no cut: the boxes held from the old frame were drawn, in
    # its pixels, on the new one (off the cat) until the next detection.
    analyzer = detect_analyzer()
    box = (380, 200, 220, 220)
    frame = scene(cat_square, [box])
    analyzer(frame)
    predictions, _, _ = analyzer(cv2.resize(frame, (W // 2, H // 2), interpolation=cv2.INTER_AREA))
    assert [iou(p.region.box, tuple(v // 2 for v in box)) >= 0.5 for p in predictions] == [True], predictions


# ---- tracking between detections ------------------------------------------------------------

@needs_finder
def test_a_tracked_region_follows_its_cat_and_keeps_its_identity(finder, cat_square):
    regions = CatRegions(RegionsConfig(crop="detect", detect_every=10), finder)
    smoother = Smoother(("a", "b"), unknown_threshold=0.5)
    ids = []
    for i in range(10):  # one detection, then nine frames followed by optical flow only
        box = (60 + 12 * i, 120, 220, 220)
        found = regions(scene(cat_square, [box]))
        assert len(found) == 1 and iou(found[0].box, box) >= 0.6, (i, found, box)
        ids.append(smoother.update(found, np.array([[0.9, 0.1]]))[0].track_id)
    assert len(set(ids)) == 1


def test_box_tracker_follows_a_moving_texture():
    rng = np.random.default_rng(1)
    texture = cv2.resize(rng.integers(0, 255, (40, 40, 3)).astype(np.uint8), (160, 160),
                         interpolation=cv2.INTER_CUBIC)
    tracker = BoxTracker()
    frames = []
    for dx in (0, 8, 16):
        f = np.full((H, W, 3), 90, np.uint8)
        f[100:260, 200 + dx:360 + dx] = texture
        frames.append(f)
    tracker.start(frames[0])
    boxes = [(200, 100, 160, 160)]
    for f, dx in zip(frames[1:], (8, 16)):
        boxes = tracker.follow(f, boxes)
        x, y, w, h = boxes[0]
        assert abs(x - (200 + dx)) <= 2 and abs(y - 100) <= 2 and abs(w - 160) <= 6


def test_a_frame_far_wider_than_tall_is_followed_and_searched_for_faces():
    # 40000x50: scaled to the tracker's and the face detector's 320-pixel width it had no row left, and
    # cv2.resize's assertion ended the run in a traceback.
    strip = np.full((50, 40000, 3), 90, np.uint8)
    tracker = BoxTracker()
    tracker.start(strip)
    assert tracker.follow(strip, [(100, 0, 50, 50)]) == [(100, 0, 50, 50)]
    assert FaceFinder(RegionsConfig(crop="detect", detector="faces")).detect(strip) == []


# ---- score map -> boxes --------------------------------------------------------------------

def maps_with(cats, shape=(12, 16)) -> np.ndarray:
    """[gh, gw, 2] maps: each (row0, row1, col0, col1, score) filled in the first, its centre marked in the second."""
    maps = np.zeros((*shape, 2), np.float32)
    for r0, r1, c0, c1, score in cats:
        maps[r0:r1, c0:c1, 0] = score
        maps[(r0 + r1) // 2, (c0 + c1) // 2, 1] = 0.8
    return maps


def test_blobs_become_boxes_in_frame_pixels():
    maps = maps_with([(2, 6, 1, 5, 0.95)])  # a cat in the upper left: cells 40 px wide at 640x480
    blobs = boxes_from_scores(maps, (W, H), 0.5, 0.8, 1.5)
    assert len(blobs) == 1
    assert iou(blobs[0].box, (40, 80, 160, 160)) >= 0.7 and blobs[0].score == pytest.approx(0.95)
    assert boxes_from_scores(maps_with([(2, 6, 1, 5, 0.7)]), (W, H), 0.5, 0.8, 1.5) == []  # never sure enough
    assert boxes_from_scores(maps_with([(2, 6, 1, 5, 0.4)]), (W, H), 0.5, 0.3, 1.5) == []  # under the threshold
    assert boxes_from_scores(maps_with([(5, 6, 5, 6, 0.95)]), (W, H), 0.5, 0.8, 1.5) == []  # smaller than min_cells


def test_the_fine_pass_adds_only_small_cats_no_coarse_box_covers():
    big, small = Blob((100, 50, 300, 300), 0.9), Blob((480, 300, 100, 100), 0.95)
    piece = Blob((150, 80, 120, 110), 0.99)  # the head of the big cat, found apart at the fine scale
    tall = Blob((440, 20, 150, 200), 0.99)  # a cat the coarse pass missed, too tall for the fine one's share
    kept = with_small_cats([big], [small, piece, tall], H, below=0.4)
    assert [b.box for b in kept] == [big.box, small.box]
    assert with_small_cats([], [small], H, below=0.2) == []


def test_touching_cats_at_a_distance_are_split_where_the_fine_pass_sees_them_apart():
    # bench/find_cats.py seed 14: one coarse box over a Ming and a Hwamok side by side, named Chungdam for 40 frames.
    pair, third = Blob((90, 120, 360, 260), 0.98), Blob((350, 240, 260, 190), 0.99)
    ming, hwamok = Blob((60, 133, 180, 187), 0.93), Blob((240, 133, 247, 200), 0.98)
    fine = [Blob((360, 160, 200, 280), 0.99), hwamok, ming]
    assert split_by_fine([pair, third], fine, H, cover=0.37) == [hwamok, ming, third]
    assert split_by_fine([pair, third], fine, H, cover=0.5) == [pair, third]  # a cat close to the camera: in parts
    tall = Blob((90, 40, 360, 300), 0.98)  # as tall as a cat near the camera: its head and body, not two cats
    assert split_by_fine([tall], [ming, hwamok], H, cover=0.37) == [tall]
    patches = [Blob((100, 130, 150, 120), 0.9), Blob((260, 250, 150, 110), 0.9)]  # a calico cat's patches
    assert split_by_fine([pair], patches, H, cover=0.37) == [pair]
    assert split_by_fine([pair], [hwamok], H, cover=0.37) == [pair]  # one cat inside: the coarse box stays


def test_blobs_that_fill_the_picture_are_one_cat():
    head, body = Blob((80, 0, 360, 280), 0.97), Blob((320, 230, 320, 250), 0.95)
    assert one_cat_filling([head, body], 0.62, 0.5) == [Blob((80, 0, 560, 480), 0.97)]
    assert one_cat_filling([head, body], 0.31, 0.5) == [head, body]  # two cats side by side cover less
    assert one_cat_filling([head, body], 0.9, None) == [head, body]
    assert one_cat_filling([head], 0.9, 0.5) == [head]


LEO_CLOSE = (Path(__file__).resolve().parents[2] / "shared" / "data" / "knyang" / "Validation" / "Leo"
             / "KakaoTalk_20200420_200631171_01.jpg")


@needs_finder
def test_the_demo_shows_one_box_per_cat(monkeypatch):
    # The demo's cats come close to the camera, where the finder sees a part of a cat beside the
    # whole (35 of its 190 frames had a second box over one cat, most reading unknown).
    dropped = []

    def counted(predictions, same_cat_iou):
        shown = one_box_per_cat(predictions, same_cat_iou)
        dropped.append(len(predictions) - len(shown))
        return shown

    monkeypatch.setattr("knyang_cam.analyzer.one_box_per_cat", counted)
    analyzer = detect_analyzer()
    cap = cv2.VideoCapture(str(ROOT / DEMO_CLIP))
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        boxes = [p.region.box for p in analyzer(frame)[0]]
        assert all(iou(a, b) < analyzer.cfg.smoothing.same_cat_iou for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert len(dropped) == 190 and sum(d > 0 for d in dropped) >= 20


@needs_finder
@pytest.mark.integration
@pytest.mark.skipif(not LEO_CLOSE.is_file(), reason="needs ../shared/data/knyang (Leo's photo close up)")
def test_a_cat_close_to_the_camera_is_one_region_not_its_head_and_body():
    photo = cv2.imread(str(LEO_CLOSE))
    h, w = photo.shape[:2]
    side_w = min(w, h * 4 // 3)
    frame = cv2.resize(photo[(h - side_w * 3 // 4) // 2:][:side_w * 3 // 4, (w - side_w) // 2:][:, :side_w],
                       (640, 480), interpolation=cv2.INTER_AREA)
    finder = CatFinder()
    assert len(finder(frame)) == 1
    finder.meta = dataclasses.replace(finder.meta, one_cat_cover=None)
    assert len(finder(frame)) == 2  # head and body apart


@needs_finder
@pytest.mark.parametrize("key,value", [("fine_input_size", [20, 30]), ("fine_input_size", [4096, 4096]),
                                       ("fine_input_size", "x"), ("input_size", [0, 0]), ("fine_below", 1.5),
                                       ("one_cat_cover", 0)])
def test_a_finder_json_with_sizes_the_network_cannot_take_is_one_line_naming_the_file(tmp_path, key, value):
    meta = json.loads((FINDER_DIR / META_FILE).read_text())
    (tmp_path / META_FILE).write_text(json.dumps({**meta, key: value}))
    (tmp_path / TFLITE_FILE).write_bytes((FINDER_DIR / TFLITE_FILE).read_bytes())
    with pytest.raises(FinderError) as e:
        CatFinder(tmp_path)
    assert str(tmp_path / META_FILE) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("text", ["[192, 256]", '"finder"', "null",
                                  '{"input_size": [192, 256], "threshold": NaN, "peak": 0.9, "min_cells": 3, '
                                  '"centre_peak": 0.2}'])
def test_a_finder_json_that_is_not_an_object_of_numbers_is_one_line_naming_the_file(tmp_path, text):
    (tmp_path / META_FILE).write_text(text)
    with pytest.raises(FinderError) as e:
        FinderMeta.read(tmp_path / META_FILE)
    assert str(tmp_path / META_FILE) in str(e.value) and "\n" not in str(e.value)


def test_two_cats_touching_side_by_side_are_split_one_stretched_cat_is_not():
    two = maps_with([(3, 9, 2, 7, 0.95), (3, 9, 7, 12, 0.9)])  # one blob, two centres
    left, right = sorted(b.box for b in boxes_from_scores(two, (W, H), 0.5, 0.8, 1.5))
    assert iou(left, (80, 120, 200, 240)) >= 0.6 and iou(right, (280, 120, 200, 240)) >= 0.6
    stretched = maps_with([(4, 8, 2, 13, 0.9)])
    assert len(boxes_from_scores(stretched, (W, H), 0.5, 0.8, 1.5)) == 1



def test_a_shallow_dip_splits_cats_at_a_distance_but_not_one_close_to_the_camera():
    def bumps(r0, r1, dip):  # one blob over columns 2-12, two centre bumps, the map dipping between them
        maps = maps_with([(r0, r1, 2, 12, 0.95)])
        maps[..., 1] = 0.0
        row = (r0 + r1) // 2
        maps[row, 2:12, 1] = [0.3, 0.7, 0.9, 0.7, dip, dip, 0.7, 0.9, 0.7, 0.3]
        return maps

    assert len(boxes_from_scores(bumps(4, 8, 0.55), (W, H), 0.5, 0.8, 1.5, 0.2)) == 2  # two cats touching
    assert len(boxes_from_scores(bumps(4, 8, 0.75), (W, H), 0.5, 0.8, 1.5, 0.2)) == 1  # one cat's broad bump
    assert len(boxes_from_scores(bumps(1, 11, 0.55), (W, H), 0.5, 0.8, 1.5, 0.2)) == 1  # close: head and body
    assert len(boxes_from_scores(bumps(1, 11, 0.3), (W, H), 0.5, 0.8, 1.5, 0.2)) == 2  # close, and two cats


# ---- configuration -------------------------------------------------------------------------

def test_detect_mode_picks_the_detector():
    cfg = RegionsConfig(crop="detect", detector="faces")
    assert type(make_finder("detect", cfg)).__name__ == "FaceFinder"
    if (FINDER_DIR / "finder.tflite").is_file():
        assert isinstance(make_finder("detect", dataclasses.replace(cfg, detector="cats")), CatRegions)


def test_smoother_from_config_takes_every_setting():
    s = config.SmoothingConfig(alpha=0.3, iou_match=0.4, forget_after=7, hysteresis=0.1, hold=3, exclusive=False,
                               same_cat_iou=0.35)
    smoother = Smoother.from_config(("a", "b"), s, 0.55)
    assert (smoother.alpha, smoother.iou_match, smoother.forget_after, smoother.hysteresis, smoother.hold,
            smoother.unknown_threshold, smoother.exclusive, smoother.same_cat_iou) == (0.3, 0.4, 7, 0.1, 3, 0.55,
                                                                                     False, 0.35)
    assert Smoother.from_config(("a", "b"), dataclasses.replace(s, detect_alpha=0.2), 0.55, crop="detect").alpha == 0.2


@needs_finder
def test_detect_mode_averages_over_more_frames_than_the_centre_crop():
    # A found cat is a region of its own: a slower average there delays no change of cat.
    analyzer = detect_analyzer()
    assert analyzer.smoother.alpha == analyzer.cfg.smoothing.detect_alpha == 0.1
    analyzer.set_mode("center")
    assert analyzer.smoother.alpha == analyzer.cfg.smoothing.alpha == 0.25
    analyzer.set_mode("detect")
    assert analyzer.smoother.alpha == 0.1
