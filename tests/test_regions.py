"""Regions: the centre square, the real cat-face cascade on a real photo, and the classifier batch
(the cat finder behind `--crop detect`: tests/test_finder.py)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from knyang_cam.config import RegionsConfig
from knyang_cam.regions import (
    FaceFinder,
    SeenCats,
    center_finder,
    center_region,
    centre_square,
    crops,
    grow_box,
    make_finder,
    seen_as_cat,
    surest,
    views_of,
    zoom_factors,
    zoomed,
)
from knyang_cam.results import Prediction, Region

# A 320x240 frame of one of the project's own cats (Hwamok) looking at the camera.
CAT_FACE = Path(__file__).parent / "data" / "cat_face.jpg"


@pytest.fixture
def cat():
    image = cv2.imread(str(CAT_FACE))
    assert image is not None
    return image


def test_center_region_is_largest_centred():
    assert center_region(640, 480) == Region((80, 0, 480, 480), "center")
    assert center_region(480, 640).box == (0, 80, 480, 480)
    assert center_region(300, 300).box == (0, 0, 300, 300)


def test_grow_box_takes_in_the_head_and_stays_in_frame():
    x, y, w, h = grow_box((300, 200, 100, 100), 1.8, 640, 480)
    assert w == h == 180
    assert x == 260  # centred sideways
    above, below = 200 - y, (y + h) - 300
    assert above > below > 0  # more room above the face (ears) than below
    # Near the edges the square is shifted inside rather than cut.
    for box in [(0, 0, 100, 100), (590, 430, 50, 50)]:
        x, y, w, h = grow_box(box, 1.8, 640, 480)
        assert x >= 0 and y >= 0 and x + w <= 640 and y + h <= 480 and w == h
    # Larger than the frame: clipped to it.
    assert grow_box((0, 0, 400, 400), 4.0, 640, 480) == (0, 0, 480, 480)


def test_detect_finds_the_cat_face(cat):
    regions = FaceFinder(RegionsConfig(crop="detect")).detect(cat)
    assert len(regions) == 1 and regions[0].source == "detect"
    x, y, w, h = regions[0].box
    # The face is in the middle of the upper part of the frame.
    assert 60 < x + w / 2 < 260 and y + h / 2 < 150 and 120 < w < 240


def test_detect_caps_regions_largest_first(cat):
    four = np.vstack([np.hstack([cat, cat])] * 2)
    cfg = RegionsConfig(crop="detect", max_regions=2)
    regions = FaceFinder(cfg).detect(four)
    assert len(regions) == 2
    areas = [r.box[2] * r.box[3] for r in regions]
    assert areas == sorted(areas, reverse=True)
    assert len(FaceFinder(dataclasses.replace(cfg, max_regions=4)).detect(four)) >= 3


def test_detection_every_n_frames_holds_boxes_then_falls_back_to_centre(cat):
    finder = make_finder("detect", RegionsConfig(crop="detect", detector="faces", detect_every=3))
    blank = np.full_like(cat, 128)
    first = finder(cat)
    assert first[0].source == "detect"
    # Frames 2 and 3 reuse the detection, even though the cat has gone.
    assert finder(blank) == first and finder(blank) == first
    # Frame 4 detects again: no face, so the centre square, marked as such.
    assert finder(blank) == [center_region(320, 240)]


def test_centre_mode_never_detects(cat):
    assert make_finder("center", RegionsConfig()) is center_finder
    assert center_finder(cat) == [Region((40, 0, 240, 240), "center")]


def test_crops_are_one_rgb_batch_at_the_classifier_size():
    frame = np.zeros((240, 320, 3), np.uint8)
    frame[:, :160] = (255, 0, 0)  # blue in BGR, left half
    frame[:, 160:] = (0, 0, 255)  # red in BGR, right half
    regions = [Region((0, 0, 100, 100), "detect"), Region((200, 100, 120, 140), "detect"),
               Region((110, 0, 100, 100), "center")]
    batch = crops(frame, regions, (64, 48))
    assert batch.shape == (3, 64, 48, 3) and batch.dtype == np.uint8
    assert tuple(batch[0, 10, 10]) == (0, 0, 255)  # blue, now in RGB order
    assert tuple(batch[1, 10, 10]) == (255, 0, 0)
    # A crop across the border keeps the left part blue and the right part red.
    assert batch[2, 32, 2, 2] > 200 and batch[2, 32, -3, 0] > 200
    assert crops(frame, [], (64, 64)).shape == (0, 64, 64, 3)


def test_zoomed_views_shrink_about_the_centre_and_stay_in_the_frame():
    assert zoom_factors(3, 0.8) == pytest.approx((1.0, 0.8, 0.64))
    assert zoom_factors(1, 0.8) == (1.0,)
    regions = [Region((100, 50, 100, 100), "detect"), Region((0, 0, 200, 200), "detect")]
    views = zoomed(regions, (1.0, 0.5), 320, 240)
    # Factor-major: every region's first view, then every region's second.
    assert [v.box for v in views] == [(100, 50, 100, 100), (0, 0, 200, 200), (125, 75, 50, 50), (50, 50, 100, 100)]
    assert all(v.source == "detect" for v in views)
    # A box larger than the frame becomes the largest square that fits, inside it.
    (big,) = zoomed([Region((250, 0, 300, 300), "detect")], (1.0,), 320, 240)
    assert big.box == (80, 0, 240, 240)


def test_a_new_region_gets_every_view_and_a_tracked_one_one_view_in_turn():
    regions = [Region((100, 50, 100, 100), "detect"), Region((0, 0, 200, 200), "detect")]
    factors = (1.0, 0.5)
    every = [v.box for v in zoomed(regions[:1], factors, 320, 240)]
    for turn in range(4):
        views, owners = views_of(regions, factors, [True, False], turn, 320, 240)
        # The new region's views first, then the tracked region's view of this turn.
        assert [v.box for v in views[:2]] == every
        assert views[2].box == zoomed(regions[1:], (factors[turn % 2],), 320, 240)[0].box
        assert owners == [0, 0, 1]
    assert views_of([], factors, [], 0, 320, 240) == ([], [])


def test_a_cat_filling_the_picture_is_also_seen_in_the_centre_square():
    factors = (1.0, 0.8, 0.64)
    centre = (40, 0, 240, 240)  # the centred square of a 320x240 frame
    big = Region((100, 10, 210, 210), "detect")  # 0.875 of the height, over the frame's centre
    views, _ = views_of([big], factors, [True], 0, 320, 240, centre_above=0.8)
    own = [v.box for v in zoomed([big], factors, 320, 240)]
    assert [v.box for v in views] == [own[0], centre, own[2]]  # in place of its second view
    # Tracked, it gets the centre square in its second turn.
    assert [views_of([big], factors, [False], t, 320, 240, 0.8)[0][0].box for t in range(3)] == \
        [own[0], centre, own[2]]
    # Not for a smaller cat, one beside the centre, the centre crop's own region, nor when turned off.
    others = [Region((100, 10, 180, 180), "detect"), Region((0, 5, 150, 230), "detect"),
              Region(centre, "center"), big]
    for region, above in zip(others, (0.8, 0.8, 0.8, None)):
        views, _ = views_of([region], factors, [True], 0, 320, 240, above)
        assert [v.box for v in views] == [v.box for v in zoomed([region], factors, 320, 240)]
    assert centre_square(big, 320, 240, 0.9) is None and centre_square(big, 320, 240, 0.85).box == centre


def test_surest_takes_each_regions_surest_row_in_any_layout():
    probs = np.array([[0.4, 0.6], [0.9, 0.1], [0.2, 0.8], [0.7, 0.3]])
    assert surest(probs, [0, 0, 0, 1], 2).tolist() == [[0.9, 0.1], [0.7, 0.3]]
    assert surest(probs, [1, 0, 1, 0], 2).tolist() == [[0.9, 0.1], [0.2, 0.8]]
    assert surest(np.zeros((0, 2)), [], 0).shape == (0, 2)


def test_seen_as_cat_needs_a_sure_finder_or_a_classifier_that_sees_some_cat():
    def pred(score, probs):
        return Prediction(Region((0, 0, 10, 10), "detect", score), "unknown", max(probs), tuple(probs))
    flat, leaning = (0.201, 0.2, 0.2, 0.2, 0.199), (0.3, 0.175, 0.175, 0.175, 0.175)
    assert not seen_as_cat(pred(0.93, flat), sure=0.95, flat=0.01)
    assert seen_as_cat(pred(0.93, leaning), sure=0.95, flat=0.01)
    assert seen_as_cat(pred(0.97, flat), sure=0.95, flat=0.01)
    assert seen_as_cat(pred(0.93, flat), sure=0.0, flat=0.01)  # sure_cat 0: every box shown
    # The centre square and cascade faces are no finder's guess: score 1.0, always shown.
    assert Region((0, 0, 10, 10), "center").score == 1.0
    with pytest.raises(ValueError, match="score"):
        Region((0, 0, 10, 10), "detect", 1.5)


def test_seen_cats_keeps_showing_a_track_once_seen_as_a_cat_and_forgets_it_later():
    def pred(track, score, probs):
        return Prediction(Region((0, 0, 10, 10), "detect", score), "unknown", max(probs), tuple(probs), track)
    flat = (0.2, 0.2, 0.2, 0.2, 0.2)
    seen = SeenCats(sure=0.95, flat=0.01, forget_after=2)
    assert seen([pred(1, 0.93, flat)]) == []  # the finder unsure, the classifier sees nothing: no cat
    assert len(seen([pred(1, 0.97, flat)])) == 1  # the finder sure once ...
    assert len(seen([pred(1, 0.93, flat)])) == 1  # ... and the track stays shown
    assert seen([pred(2, 0.93, flat)]) == []  # another track is judged on its own
    for _ in range(3):
        seen([])
    assert seen([pred(1, 0.93, flat)]) == []  # gone longer than forget_after: forgotten
