import itertools

import numpy as np
import pytest

from knyang_cam.results import UNKNOWN, Prediction, Region, iou
from knyang_cam.smoothing import MAX_JOINT, Smoother, _joint, one_box_per_cat

CLASSES = ("Alpha", "Beta", "Gamma")
CENTER = Region((80, 0, 480, 480), "center")
LEFT = Region((10, 10, 100, 100), "detect")
RIGHT = Region((400, 50, 120, 120), "detect")


def one_hot(i, p=0.9, n=3):
    v = np.full(n, (1.0 - p) / (n - 1))
    v[i] = p
    return v


def labels(sm, rows, region=CENTER):
    return [sm.update([region], np.array([row]))[0].label for row in rows]


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (10, 0, 10, 10)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (2, 2, 5, 5)) == pytest.approx(25 / 100)
    assert iou((0, 0, 10, 10), (100, 100, 5, 5)) == 0.0


def test_single_frame_flip_does_not_change_the_label():
    sm = Smoother(CLASSES)
    seq = [one_hot(0)] * 10 + [one_hot(1)] + [one_hot(0)] * 5
    assert labels(sm, seq) == ["Alpha"] * 16


def test_single_frame_flip_with_a_confident_outlier():
    sm = Smoother(CLASSES)
    seq = [one_hot(0, 0.8)] * 10 + [one_hot(2, 1.0)] + [one_hot(0, 0.8)] * 3
    assert set(labels(sm, seq)) == {"Alpha"}


def test_sustained_change_switches_within_a_few_frames():
    sm = Smoother(CLASSES)
    out = labels(sm, [one_hot(0)] * 10 + [one_hot(1)] * 10)
    assert out[:10] == ["Alpha"] * 10
    first_beta = out.index("Beta")
    assert 10 < first_beta <= 15
    assert out[first_beta:] == ["Beta"] * (20 - first_beta)
    # On the way it may pass through unknown, but never back to Alpha.
    assert set(out[10:first_beta]) <= {"Alpha", UNKNOWN}


def test_alpha_one_and_hold_one_mean_no_smoothing():
    sm = Smoother(CLASSES, alpha=1.0, hold=1)
    assert labels(sm, [one_hot(0), one_hot(1), one_hot(0)]) == ["Alpha", "Beta", "Alpha"]


def test_a_young_track_averages_its_frames_evenly():
    # With a low alpha the first frame must not outweigh the next ones: three frames, two of
    # them Beta, read Beta (a moving average started on the first frame still says Alpha).
    sm = Smoother(CLASSES, alpha=0.2, hold=1, unknown_threshold=0.5)
    out = sm.update([CENTER], np.array([one_hot(0)]))
    assert out[0].probs == pytest.approx(tuple(one_hot(0)))
    for _ in range(2):
        out = sm.update([CENTER], np.array([one_hot(1)]))
    assert out[0].probs == pytest.approx(tuple((one_hot(0) + 2 * one_hot(1)) / 3))
    assert out[0].label == "Beta"
    # Past 1 / alpha frames it is a moving average again: the newest frame weighs alpha.
    for _ in range(10):
        sm.update([CENTER], np.array([one_hot(1)]))
    before = np.array(sm.update([CENTER], np.array([one_hot(1)]))[0].probs)
    after = np.array(sm.update([CENTER], np.array([one_hot(2)]))[0].probs)
    assert after == pytest.approx(0.2 * one_hot(2) + 0.8 * before)


def test_unknown_below_threshold_and_confidence_is_the_top_probability():
    sm = Smoother(CLASSES, unknown_threshold=0.6)
    flat = np.array([0.4, 0.35, 0.25])
    for _ in range(20):
        (pred,) = sm.update([CENTER], flat[None])
    assert pred.label == UNKNOWN
    assert pred.confidence == pytest.approx(0.4)
    np.testing.assert_allclose(pred.probs, flat)
    sm2 = Smoother(CLASSES, unknown_threshold=0.3)
    assert sm2.update([CENTER], flat[None])[0].label == "Alpha"


def test_first_frame_of_a_new_region_uses_its_own_probabilities():
    (pred,) = Smoother(CLASSES).update([CENTER], one_hot(2, 0.95)[None])
    assert pred.label == "Gamma" and pred.confidence == pytest.approx(0.95)


def test_hysteresis_holds_a_label_hovering_at_the_threshold():
    # Scores alternating just above and below 0.6 flicker without hysteresis.
    rows = [one_hot(0, 0.9)] * 5 + [one_hot(0, p) for p in [0.57, 0.63] * 10]
    plain = labels(Smoother(CLASSES, alpha=1.0, hold=1, hysteresis=0.0), rows)
    held = labels(Smoother(CLASSES, alpha=1.0, hold=1, hysteresis=0.05), rows)
    assert UNKNOWN in plain
    assert held == ["Alpha"] * len(rows)
    # Below the band the label does go.
    assert labels(Smoother(CLASSES, alpha=1.0, hold=1), rows[:5] + [one_hot(0, 0.5)])[-1] == UNKNOWN


def test_hold_needs_consecutive_frames():
    sm = Smoother(CLASSES, alpha=1.0, hold=3)
    rows = [one_hot(0)] * 3 + [one_hot(1), one_hot(1), one_hot(0), one_hot(1), one_hot(1), one_hot(1)]
    assert labels(sm, rows) == ["Alpha"] * 8 + ["Beta"]


def test_a_name_that_keeps_losing_goes_even_when_what_beats_it_changes():
    # Another cat in the old one's place, hovering at the threshold: the decision alternates between
    # unknown and its name, neither for `hold` frames in a row; the old name must not stay meanwhile.
    sm = Smoother(CLASSES, alpha=1.0, hold=2, hysteresis=0.0, unknown_threshold=0.6)
    rows = [one_hot(0)] * 3 + [one_hot(1, 0.62), one_hot(1, 0.58)] * 4
    shown = labels(sm, rows)
    assert shown[:4] == ["Alpha"] * 4  # one frame of another decision never shows
    assert "Alpha" not in shown[4:] and set(shown[4:]) <= {UNKNOWN, "Beta"}


def test_entering_a_label_needs_the_full_threshold():
    sm = Smoother(CLASSES, alpha=1.0, unknown_threshold=0.6)
    assert labels(sm, [one_hot(0, 0.58)] * 3) == [UNKNOWN] * 3


def test_two_regions_are_tracked_independently():
    sm = Smoother(CLASSES)
    for _ in range(8):
        a, b = sm.update([LEFT, RIGHT], np.stack([one_hot(0), one_hot(1)]))
    assert (a.label, b.label) == ("Alpha", "Beta")
    assert a.track_id != b.track_id
    # Listed in the other order, each box keeps its own track and history.
    b2, a2 = sm.update([RIGHT, LEFT], np.stack([one_hot(1), one_hot(0)]))
    assert (a2.track_id, b2.track_id) == (a.track_id, b.track_id)
    assert (a2.label, b2.label) == ("Alpha", "Beta")
    # A moving box that still overlaps continues its track.
    moved = Region((30, 20, 100, 100), "detect")
    (m,) = sm.update([moved], one_hot(2)[None])
    assert m.track_id == a.track_id and m.label == "Alpha"


def test_a_box_that_does_not_overlap_starts_a_new_track():
    sm = Smoother(CLASSES)
    (a,) = sm.update([LEFT], one_hot(0)[None])
    (b,) = sm.update([RIGHT], one_hot(1)[None])
    assert b.track_id != a.track_id and b.label == "Beta"


def test_forget_after():
    sm = Smoother(CLASSES, forget_after=3)
    (a,) = sm.update([LEFT], one_hot(0)[None])
    for _ in range(2):
        sm.update([], np.zeros((0, 3)))
    assert sm.track_count == 1
    (again,) = sm.update([LEFT], one_hot(0)[None])
    assert again.track_id == a.track_id  # unseen for 2 < 3 frames: still known
    for _ in range(3):
        sm.update([], np.zeros((0, 3)))
    assert sm.track_count == 0
    (new,) = sm.update([LEFT], one_hot(1)[None])
    assert new.track_id != a.track_id and new.label == "Beta"


def test_reset_drops_tracks():
    sm = Smoother(CLASSES)
    for _ in range(10):
        (a,) = sm.update([CENTER], one_hot(0)[None])
    sm.reset()
    (b,) = sm.update([CENTER], one_hot(1)[None])
    assert b.label == "Beta" and b.track_id != a.track_id


def test_reset_with_same_classes_keeps_tracks_and_new_classes_drop_them():
    sm = Smoother(CLASSES)
    for _ in range(10):
        (a,) = sm.update([CENTER], one_hot(0)[None])
    sm.reset(list(CLASSES))
    (b,) = sm.update([CENTER], one_hot(1)[None])
    assert b.track_id == a.track_id and b.label == "Alpha"

    sm.reset(CLASSES + ("Delta",), unknown_threshold=0.5)
    assert sm.classes == CLASSES + ("Delta",) and sm.unknown_threshold == 0.5
    (c,) = sm.update([CENTER], one_hot(3, 0.55, n=4)[None])
    assert c.track_id not in (a.track_id,) and c.label == "Delta"
    assert len(c.probs) == 4


def test_bad_probs_shape_is_rejected():
    sm = Smoother(CLASSES)
    with pytest.raises(ValueError, match="shape"):
        sm.update([CENTER], np.ones((1, 4)) / 4)
    with pytest.raises(ValueError, match="shape"):
        sm.update([CENTER, LEFT], one_hot(0)[None])


def test_predictions_follow_region_order_and_carry_smoothed_probs():
    sm = Smoother(CLASSES, alpha=0.5)
    sm.update([CENTER], np.array([[1.0, 0.0, 0.0]]))
    (p,) = sm.update([CENTER], np.array([[0.0, 1.0, 0.0]]))
    np.testing.assert_allclose(p.probs, [0.5, 0.5, 0.0])
    assert p.region is CENTER


def test_one_name_goes_to_one_region_per_frame():
    # Both regions lean to Alpha; the surer keeps it, the other takes its next best.
    sm = Smoother(CLASSES, unknown_threshold=0.6)
    sure, unsure = np.array([0.9, 0.05, 0.05]), np.array([0.5, 0.4, 0.1])
    for _ in range(3):
        a, b = sm.update([LEFT, RIGHT], np.stack([unsure, sure]))
        assert (a.label, b.label) == ("Beta", "Alpha")
        # Given "not Alpha", the head's share (0.3 of Beta's 0.4) takes Alpha's: 0.1 + 0.7.
        assert a.confidence == pytest.approx(0.8)
        assert a.probs == pytest.approx(tuple(unsure))  # the log keeps what the model said


def test_names_go_to_regions_together_not_surest_first():
    # The left region is surer of Beta than the right one, but the right one has nowhere else to
    # go: Beta on the left and Gamma on the right (0.70 x 0.24) is less likely than Alpha and Beta
    # (0.29 x 0.66). Surest first named both wrong.
    sm = Smoother(CLASSES, unknown_threshold=0.6)
    left, right = np.array([0.29, 0.70, 0.01]), np.array([0.10, 0.66, 0.24])
    a, b = sm.update([LEFT, RIGHT], np.stack([left, right]))
    assert (a.label, b.label) == ("Alpha", "Beta")


def _score(probs, combo):
    # No name counts the region's floor: its smallest probability.
    return sum(np.log(p[k]) if k >= 0 else np.log(p.min()) for p, k in zip(probs, combo))


def _allowed(combo, apart):
    return not any(apart[i, j] and combo[i] == combo[j] >= 0 for i in range(len(combo)) for j in range(len(combo)))


@pytest.mark.parametrize("seed", range(40))
def test_joint_assignment_is_the_most_likely_one(seed):
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(2, 5)), int(rng.integers(2, 6))
    probs = [rng.dirichlet(np.full(c, 0.5)) + 1e-3 for _ in range(n)]
    apart = ~np.eye(n, dtype=bool)
    if seed % 4 == 0:
        apart[0, 1] = apart[1, 0] = False  # one cat in two boxes may share its name
    out = _joint(probs, apart)
    best = max(_score(probs, combo) for combo in itertools.product(range(-1, c), repeat=n) if _allowed(combo, apart))
    assert _allowed(out, apart)
    assert _score(probs, out) == pytest.approx(best)


def test_joint_assignment_past_its_limit_still_names_no_cat_twice():
    rng = np.random.default_rng(0)
    n = MAX_JOINT + 2
    probs = [rng.dirichlet(np.ones(12)) for _ in range(n)]
    probs = [np.roll(p, -int(np.argmax(p))) for p in probs]  # all lean to class 0
    out = _joint(probs, ~np.eye(n, dtype=bool))
    assert out[int(np.argmax([p.max() for p in probs]))] == 0  # the surest region keeps the name all want
    assert len(set(out)) == n and min(out) >= 0


def test_a_stranger_beside_a_cat_does_not_become_the_other_cat():
    # Two cats in the household; a crop the model finds unfamiliar is pulled towards uniform.
    sm = Smoother(("Alpha", "Beta"), unknown_threshold=0.6)
    mine, stranger = np.array([0.95, 0.05]), np.array([0.55, 0.45])
    a, b = sm.update([LEFT, RIGHT], np.stack([mine, stranger]))
    assert (a.label, b.label) == ("Alpha", UNKNOWN)


def test_a_taken_name_is_dropped_at_once_despite_hold():
    sm = Smoother(CLASSES, alpha=1.0, hold=5, unknown_threshold=0.3)
    (a,) = sm.update([LEFT], one_hot(0, 0.6)[None])
    assert a.label == "Alpha"
    # A surer Alpha appears beside it: the first region must not show Alpha for `hold` more frames.
    a, b = sm.update([LEFT, RIGHT], np.stack([np.array([0.6, 0.35, 0.05]), one_hot(0, 0.95)]))
    assert (a.label, b.label) == ("Beta", "Alpha")


def test_two_overlapping_regions_are_one_cat_in_parts_and_share_its_name():
    # The finder can split a cat that fills the picture in two: naming the second box with the
    # cat's next best would name a cat that is not there.
    whole, part = Region((100, 0, 400, 400), "detect"), Region((350, 100, 300, 300), "detect")  # IoU 0.22
    sure, unsure = one_hot(0, 0.9), np.array([0.7, 0.25, 0.05])
    apart = Smoother(CLASSES, unknown_threshold=0.6, same_cat_iou=0.3)
    a, b = apart.update([whole, part], np.stack([sure, unsure]))
    assert (a.label, b.label) == ("Alpha", "Beta")  # overlapping too little to be one cat
    one = Smoother(CLASSES, unknown_threshold=0.6, same_cat_iou=0.2)
    a, b = one.update([whole, part], np.stack([sure, unsure]))
    assert (a.label, b.label) == ("Alpha", "Alpha")
    # Regions apart still give one name to one region.
    a, b = one.update([LEFT, RIGHT], np.stack([sure, unsure]))
    assert (a.label, b.label) == ("Alpha", "Beta")


def test_a_part_of_a_cat_that_reads_as_another_cat_shows_no_name():
    # The finder split a cat that fills the picture: the part alone leans to another cat. It may
    # share the whole's name, never show a different one over the same cat.
    whole, part = Region((100, 0, 400, 400), "detect"), Region((350, 100, 300, 300), "detect")  # IoU 0.22
    sm = Smoother(CLASSES, unknown_threshold=0.6, same_cat_iou=0.2)
    for _ in range(3):
        a, b = sm.update([whole, part], np.stack([one_hot(0, 0.9), one_hot(1, 0.8)]))
        assert (a.label, b.label) == ("Alpha", UNKNOWN)
    # Apart, the same two are two cats with a name each.
    a, b = Smoother(CLASSES, unknown_threshold=0.6).update([LEFT, RIGHT], np.stack([one_hot(0, 0.9), one_hot(1, 0.8)]))
    assert (a.label, b.label) == ("Alpha", "Beta")


def shown_as(region, label, top):
    probs = one_hot(CLASSES.index(label) if label != UNKNOWN else 0, top)
    return Prediction(region, label, float(probs.max()), tuple(probs))


def test_a_part_of_a_cat_is_not_shown_beside_it_one_cat_one_box():
    whole, part = Region((100, 0, 400, 400), "detect"), Region((350, 100, 300, 300), "detect")  # IoU 0.22
    # Whatever the part reads (unknown, or the whole's name), only the surer box shows, wherever it is listed.
    for label in (UNKNOWN, "Alpha"):
        shown = one_box_per_cat([shown_as(part, label, 0.5), shown_as(whole, "Alpha", 0.9)], same_cat_iou=0.2)
        assert [p.region for p in shown] == [whole]
    # The part is the surer one: it stays, the whole goes.
    shown = one_box_per_cat([shown_as(part, "Alpha", 0.95), shown_as(whole, UNKNOWN, 0.5)], same_cat_iou=0.2)
    assert [p.region for p in shown] == [part]
    # Overlapping less than same_cat_iou: two cats, both shown in their order, also the one reading unknown.
    shown = one_box_per_cat([shown_as(part, UNKNOWN, 0.5), shown_as(whole, "Alpha", 0.9)], same_cat_iou=0.3)
    assert [p.region for p in shown] == [part, whole]
    cats = [shown_as(LEFT, UNKNOWN, 0.4), shown_as(RIGHT, "Beta", 0.9), shown_as(CENTER, "Gamma", 0.8)]
    assert one_box_per_cat(cats, same_cat_iou=0.2) == cats
    assert one_box_per_cat([], same_cat_iou=0.2) == []
    # At 0 any overlap makes one cat, but cats apart are still each shown.
    assert one_box_per_cat(cats[:2], same_cat_iou=0.0) == cats[:2]
    assert one_box_per_cat([shown_as(part, UNKNOWN, 0.5), shown_as(whole, "Alpha", 0.9)], same_cat_iou=0.0) == \
        [shown_as(whole, "Alpha", 0.9)]


def test_at_same_cat_iou_zero_cats_apart_still_get_a_name_each():
    sm = Smoother(CLASSES, unknown_threshold=0.6, same_cat_iou=0.0)
    a, b = sm.update([LEFT, RIGHT], np.stack([one_hot(0, 0.9), np.array([0.7, 0.25, 0.05])]))
    assert (a.label, b.label) == ("Alpha", "Beta")


def test_without_exclusive_two_regions_may_share_a_name():
    sm = Smoother(CLASSES, unknown_threshold=0.3, exclusive=False)
    a, b = sm.update([LEFT, RIGHT], np.stack([np.array([0.5, 0.4, 0.1]), one_hot(0)]))
    assert (a.label, b.label) == ("Alpha", "Alpha")


def test_with_recent_a_track_averages_the_surest_of_its_last_frames():
    # Views in turn: a sure view every third frame, two unsure ones between. With recent 3 each
    # frame counts the sure one, as if every view had been classified every frame.
    sure, unsure = one_hot(0, 0.9), one_hot(0, 0.4)
    rows = [sure, unsure, unsure] * 4
    in_turn = Smoother(CLASSES, recent=3)
    out = [in_turn.update([CENTER], np.array([r]))[0] for r in rows]
    assert all(p.label == "Alpha" for p in out)
    assert out[-1].probs == pytest.approx(tuple(sure))
    # Without it the unsure frames pull the average below the threshold.
    plain = Smoother(CLASSES)
    last = [plain.update([CENTER], np.array([r]))[0] for r in rows][-1]
    assert last.probs[0] < plain.unknown_threshold


def test_tracked_says_which_regions_continue_a_track_and_changes_nothing():
    sm = Smoother(CLASSES)
    assert sm.tracked([LEFT, RIGHT]) == [False, False]
    sm.update([LEFT], np.array([one_hot(0)]))
    moved = Region((15, 12, 100, 100), "detect")
    assert sm.tracked([moved, RIGHT]) == [True, False]
    assert sm.track_count == 1


def test_recent_must_be_positive_and_same_cat_iou_a_share():
    with pytest.raises(ValueError, match="recent"):
        Smoother(CLASSES, recent=0)
    with pytest.raises(ValueError, match="same_cat_iou"):
        Smoother(CLASSES, same_cat_iou=1.5)


def test_with_recent_a_change_of_cat_shows_at_most_recent_minus_one_frames_late():
    sm = Smoother(CLASSES, alpha=1.0, hold=1, recent=3)
    # A surer old cat lingers for two frames; as sure a new one shows at once.
    assert labels(sm, [one_hot(0, 0.95)] * 3 + [one_hot(2, 0.9)] * 3) == ["Alpha"] * 5 + ["Gamma"]
    sm = Smoother(CLASSES, alpha=1.0, hold=1, recent=3)
    assert labels(sm, [one_hot(0, 0.9)] * 3 + [one_hot(2, 0.9)]) == ["Alpha"] * 3 + ["Gamma"]
