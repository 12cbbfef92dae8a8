import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from knyang_cam import overlay, text
from knyang_cam.overlay import BAR_COLOUR, HINT, TRACK_COLOUR, UNKNOWN_COLOUR, Hud, bar_tracks, class_colour, draw
from knyang_cam.results import UNKNOWN, Prediction, Region

CLASSES = ("Chungdam", "Eve", "Hwamok", "Leo")
HUD = Hud(fps=150.0, timing_ms={"capture": 1.2, "detect": 0.0, "infer": 3.9, "draw": 0.6})


def frame(w=640, h=480, value=0):
    return np.full((h, w, 3), value, np.uint8)


def pred(probs, label=None, box=(80, 0, 480, 480), source="center", classes=CLASSES):
    label = label or classes[int(np.argmax(probs))]
    conf = probs[classes.index(label)] if label in classes else max(probs)
    return Prediction(Region(box, source), label, float(conf), tuple(probs), 1)


def boxes(preds):
    return [p.region.box for p in preds]


def filled_runs(img, classes, preds, hud=True, shape=(480, 640)):
    """For each bar of a frame of `shape` drawn as `img`: the length of the run of non-track pixels from
    its left end, and its colour."""
    out = []
    for x, y, w, h in bar_tracks(shape, classes, boxes=boxes(preds), hud=hud):
        row = img[y + h // 2, x:x + w]
        is_track = np.all(row == TRACK_COLOUR, axis=1)
        run = int(np.argmax(is_track)) if is_track.any() else w
        out.append((run, tuple(int(v) for v in row[0]) if run else None, w))
    return out


def test_returns_new_bgr_frame_and_leaves_input_alone():
    src = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    before = src.copy()
    out = draw(src, [pred((0.1, 0.7, 0.1, 0.1))], CLASSES, HUD)
    # The window's picture has the bars' strip beside the frame; a recording keeps the frame's size.
    assert out.shape == (480, 640 + overlay.side_width(src.shape), 3) and out.dtype == np.uint8
    assert overlay.shown_size((640, 480)) == (out.shape[1], 480)
    assert draw(src, [pred((0.1, 0.7, 0.1, 0.1))], CLASSES).shape == src.shape
    assert out is not src and not np.shares_memory(out, src)
    np.testing.assert_array_equal(src, before)
    assert np.any(out[:, :640] != src)


def test_rejects_non_bgr_frames():
    with pytest.raises(ValueError, match="BGR uint8"):
        draw(np.zeros((48, 64), np.uint8), [], CLASSES, HUD)


def test_bar_lengths_follow_the_probabilities_and_the_winner_is_highlighted():
    probs = (0.1, 0.6, 0.25, 0.05)
    out = draw(frame(), [pred(probs)], CLASSES, HUD)
    runs = filled_runs(out, CLASSES, [pred(probs)])
    for (run, _, width), p in zip(runs, probs):
        assert abs(run - round(p * width)) <= 1, (run, p, width)
    lengths = [r for r, _, _ in runs]
    assert lengths[1] > lengths[2] > lengths[0] > lengths[3] > 0
    assert runs[1][1] == class_colour(1)
    assert all(runs[i][1] == BAR_COLOUR for i in (0, 2, 3))


def test_bars_follow_the_largest_region():
    small = pred((0.9, 0.05, 0.03, 0.02), box=(400, 300, 60, 60), source="detect")
    big = pred((0.02, 0.03, 0.05, 0.9), box=(100, 80, 250, 250), source="detect")
    out = draw(frame(), [small, big], CLASSES, HUD)
    lengths = [r for r, _, _ in filled_runs(out, CLASSES, [small, big])]
    assert lengths[3] == max(lengths) and lengths[0] < lengths[3] / 5


def test_unknown_highlights_no_bar_and_uses_the_unknown_colour():
    probs = (0.4, 0.3, 0.2, 0.1)
    p = pred(probs, label=UNKNOWN, box=(200, 100, 200, 200), source="detect")
    out = draw(frame(), [p], CLASSES, HUD)
    assert all(colour == BAR_COLOUR for _, colour, _ in filled_runs(out, CLASSES, [p]))
    # The region's box is drawn in the unknown colour (its right edge, away from the text).
    assert tuple(out[250, 398]) == UNKNOWN_COLOUR


@pytest.mark.parametrize("size", [(320, 240), (640, 480), (1920, 1080)])
@pytest.mark.parametrize("n", [2, 20])
def test_2_to_20_classes_fit_inside_the_frame(size, n):
    w, h = size
    classes = tuple(f"cat{i:02d}" for i in range(n))
    probs = np.linspace(1, 2, n)
    probs = tuple(probs / probs.sum())
    side = min(w, h)
    p = [pred(probs, box=((w - side) // 2, 0, side, side), classes=classes)]
    out = draw(frame(w, h), p, classes, HUD)
    tracks = bar_tracks((h, w), classes, boxes=boxes(p))
    assert len(tracks) == n
    for (x, y, tw, th), nxt in zip(tracks, tracks[1:] + [None]):
        # In the strip beside the frame, however much of the frame the cat fills.
        assert w <= x and x + tw <= out.shape[1] and 0 <= y and y + th <= h and tw > 0 and th > 0
        if nxt is not None:
            assert y + th <= nxt[1]  # rows do not overlap
    # Level with the picture between the HUD's strips.
    assert tracks[0][1] > 0.04 * h and tracks[-1][1] + tracks[-1][3] < 0.96 * h
    runs = filled_runs(out, classes, p, shape=(h, w))
    assert [r for r, _, _ in runs] == sorted(r for r, _, _ in runs)  # probs increase downwards
    assert runs[-1][1] == class_colour(n - 1)


def _name_area(img, classes, i, preds):
    x, y, w, h = bar_tracks((480, 640), classes, boxes=boxes(preds))[i]
    x0 = x - round(640 * 0.15)  # the names' column, left of the tracks
    return img[y - h // 2: y + h + h // 2, max(0, x0):x]


def test_non_ascii_names_are_drawn():
    ascii_names = ("Nabi", "Eve", "Hwamok", "Chloe")
    names = ("나비", "Eve", "Hwamok", "Chloé")
    probs = (0.7, 0.1, 0.1, 0.1)
    pa, pb = [pred(probs, classes=ascii_names)], [pred(probs, classes=names)]
    a = draw(frame(), pa, ascii_names, HUD)
    b = draw(frame(), pb, names, HUD)
    for i in (0, 3):
        area = _name_area(b, names, i, pb)
        assert (area.max(axis=2) > 128).sum() > 20  # bright glyph pixels on the dark panel
        assert not np.array_equal(area, _name_area(a, ascii_names, i, pa))


def has_glyph(font_path, char: str) -> bool:
    from fontTools.ttLib import TTFont

    with TTFont(font_path, fontNumber=0, lazy=True) as font:
        return ord(char) in (font.getBestCmap() or {})


def test_hangul_is_drawn_with_glyphs_not_boxes():
    path = text.font_for("나비")
    if path is None or not has_glyph(path, "나"):
        pytest.skip("no font with Hangul on this machine (install fonts-nanum or fonts-noto-cjk)")
    one, two = frame(200, 60), frame(200, 60)
    text.put_text(one, "나비", 10, 45, 30, (255, 255, 255))
    text.put_text(two, "비나", 10, 45, 30, (255, 255, 255))
    assert one.any() and not np.array_equal(one, two)


def test_configured_font_that_does_not_exist_falls_back():
    img = frame(200, 60)
    text.put_text(img, "Chloé", 10, 45, 30, (255, 255, 255), font="/nonexistent/font.ttf")
    assert img.any()


def test_text_is_clipped_at_the_border():
    img = frame(100, 40)
    text.put_text(img, "Chloé Chloé Chloé", 60, 10, 30, (255, 255, 255))
    text.put_text(img, "나비", -20, 70, 30, (255, 255, 255))
    assert img.shape == (40, 100, 3) and img.any()


@pytest.mark.parametrize("change", [
    {"toast": "saved snapshots/a.jpg"},
    {"status": "camera lost, reconnecting 2/3"},
    {"show_help": True},
    {"paused": True},
    {"saved_counts": {"Eve": 3, "unlabeled": 1}},
    {"crop_mode": "detect"},
    {"show_bars": False},
])
def test_hud_fields_change_the_image(change):
    p = [pred((0.1, 0.7, 0.1, 0.1))]
    base = draw(frame(value=90), p, CLASSES, HUD)
    fields = {**{f: getattr(HUD, f) for f in ("fps", "timing_ms")}, **change}
    assert np.any(draw(frame(value=90), p, CLASSES, Hud(**fields)) != base)


@pytest.mark.parametrize("cats", [3, 9])
def test_the_help_lists_every_key_and_every_number_keys_cat(cats):
    # The keys' column, one line each: the eleven keys, then 1 to `cats`. At 640x480 a household of nine
    # lost keys 7 to 9 below the frame's edge (the type did not shrink to fit).
    names = tuple(f"Cat{i}" for i in range(1, cats + 1))
    shown = draw(frame(value=255), [], names, Hud(show_help=True, label_keys=names))
    rows = np.all(shown == overlay.STATUS_COLOUR, axis=2).any(axis=1)
    assert int(rows[0] + np.sum(rows[1:] & ~rows[:-1])) == 11 + cats


def _bar_pixels(img, classes, preds):
    colours = np.array([TRACK_COLOUR, BAR_COLOUR] + [class_colour(i) for i in range(len(classes))])
    n = 0
    for x, y, w, h in bar_tracks((480, 640), classes, boxes=boxes(preds)):
        row = img[y + h // 2, x:x + w]
        n += int(np.all(row[:, None, :] == colours[None], axis=2).any(axis=1).sum())
    return n


def test_no_bars_without_predictions_or_when_hidden():
    p = [pred((0.1, 0.7, 0.1, 0.1), box=(400, 100, 200, 200), source="detect")]
    assert _bar_pixels(draw(frame(), p, CLASSES, HUD), CLASSES, p) > 100
    assert _bar_pixels(draw(frame(), [], CLASSES, HUD), CLASSES, p) == 0
    assert _bar_pixels(draw(frame(), p, CLASSES, Hud(show_bars=False)), CLASSES, p) == 0


def test_hud_is_frozen_and_validated():
    counts = {"Eve": 1}
    hud = Hud(saved_counts=counts)
    counts["Eve"] = 5
    assert hud.saved_counts["Eve"] == 1
    with pytest.raises(TypeError):
        hud.saved_counts["Eve"] = 2
    with pytest.raises(ValueError, match="crop_mode"):
        Hud(crop_mode="face")
    with pytest.raises(ValueError, match="fps"):
        Hud(fps=-1)


def test_the_hint_names_the_keys():
    for key in ("q quit", "space pause", "s snapshot", "1-9 label", "u unlabeled", "c crop",
                "b bars", "h help"):
        assert key in HINT


@pytest.mark.slow  # a subprocess
def test_overlay_imports_no_model_library():
    code = (
        "import sys, numpy as np\n"
        "from knyang_cam.overlay import draw, Hud\n"
        "from knyang_cam.results import Prediction, Region\n"
        "p = Prediction(Region((0, 0, 50, 50), 'center'), '나비', 0.9, (0.9, 0.1))\n"
        "draw(np.zeros((240, 320, 3), np.uint8), [p], ('나비', 'Eve'), Hud())\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'ai_edge_litert') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


# ---------------------------------------------------------------- the recorded picture (no HUD)

GREY = 90


def _interior_untouched(out, box, margin):
    x, y, w, h = box
    inner = out[y + margin:y + h - margin, x + margin:x + w - margin]
    return bool((inner == GREY).all())


def _colour_rows(out, colour, x0, x1):
    """Rows in which `colour` appears between columns x0 and x1."""
    hit = np.all(out[:, x0:x1] == colour, axis=2).any(axis=1)
    return np.flatnonzero(hit)


@pytest.mark.parametrize("size", [(320, 240), (640, 480), (1920, 1080)])
def test_each_cat_gets_its_label_at_its_box_and_nothing_over_the_cat(size):
    w, h = size
    left = pred((0.05, 0.85, 0.05, 0.05), box=(w // 10, h // 3, w // 4, h // 3), source="detect")
    right = pred((0.05, 0.05, 0.05, 0.85), box=(w * 6 // 10, h // 2, w // 5, h // 4), source="detect")
    out = draw(frame(w, h, GREY), [left, right], CLASSES)
    margin = round(3 * max(1, min(w / 640, h / 480))) + 2  # the outline's thickness, and a pixel
    for p in (left, right):
        x, y, bw, bh = p.region.box
        assert _interior_untouched(out, p.region.box, margin), "something drawn over the cat"
        colour = class_colour(CLASSES.index(p.label))
        rows = _colour_rows(out, colour, x, x + bw)
        above = rows[rows < y]
        assert len(above) >= 9, "no label chip right above the box"  # cap height >= 9 px at 320x240
        assert y - above.min() < h * 0.1  # ... and close to it, not somewhere else
    # The bars are drawn, away from both cats and their labels.
    tracks = bar_tracks(out.shape, CLASSES, boxes=boxes([left, right]), hud=False)
    for tx, ty, tw, th in tracks:
        for p in (left, right):
            x, y, bw, bh = p.region.box
            assert tx + tw <= x or tx >= x + bw or ty + th <= y or ty >= y + bh


def test_label_goes_below_a_box_at_the_top_and_stays_in_the_frame():
    p = pred((0.85, 0.05, 0.05, 0.05), box=(600, 0, 100, 120), source="detect")
    out = draw(frame(640, 480, GREY), [p], CLASSES)
    rows = _colour_rows(out, class_colour(0), 600, 640)
    assert rows.max() > 120 + 5  # the chip hangs below the box
    assert _interior_untouched(out, (600, 0, 40, 120), 5)


@pytest.mark.parametrize("corner", ["bottom-left", "bottom-right", "top-left", "top-right"])
def test_bars_move_to_a_corner_away_from_the_cat(corner):
    w, h = 640, 480
    bw, bh = 260, 200
    x = 20 if "left" in corner else w - 20 - bw
    y = 60 if "top" in corner else h - 20 - bh
    p = pred((0.1, 0.6, 0.2, 0.1), box=(x, y, bw, bh), source="detect")
    out = draw(frame(w, h, GREY), [p], CLASSES)
    assert _interior_untouched(out, p.region.box, 5)
    runs = filled_runs(out, CLASSES, [p], hud=False)
    assert runs[1][1] == class_colour(1)  # the bars are there, with the winner highlighted


def test_bars_get_compact_when_every_corner_has_a_cat():
    w, h = 640, 480
    cats = [pred((0.1, 0.6, 0.2, 0.1), box=(x, y, 200, 150), source="detect")
            for x in (10, 430) for y in (40, 290)]
    tracks = bar_tracks((h, w), CLASSES, boxes=boxes(cats), hud=False)
    alone = bar_tracks((h, w), CLASSES, boxes=boxes(cats[:1]), hud=False)
    assert tracks[-1][1] - tracks[0][1] < alone[-1][1] - alone[0][1]


def test_no_region_draws_a_quiet_no_cat_and_no_box_or_bars():
    out = draw(frame(640, 480, GREY), [], CLASSES)
    changed = np.any(out != GREY, axis=2)
    assert 50 < changed.sum() < 0.02 * changed.size  # a small note, not a box or a panel
    ys, xs = np.nonzero(changed)
    assert ys.max() < 60 and xs.max() < 160  # in the top-left corner
    assert not any(np.all(out == class_colour(i), axis=2).any() for i in range(len(CLASSES)))


def test_the_recording_has_no_hud_and_hud_adds_it():
    p = [pred((0.1, 0.7, 0.1, 0.1), box=(250, 150, 200, 200), source="detect")]
    recorded = draw(frame(640, 480, GREY), p, CLASSES, bars=False)
    on_screen = draw(frame(640, 480, GREY), p, CLASSES, HUD)
    # The strips (FPS and timings at the top, key help at the bottom) are the HUD's alone.
    for band in (np.s_[0:20], np.s_[460:480]):
        assert (recorded[band] == GREY).all()
        assert (on_screen[band] != GREY).any()


def test_text_scales_with_the_frame_but_gently():
    heights = {}
    for w, h in ((320, 240), (640, 480), (1920, 1080)):
        box = (w // 3, h // 3, w // 3, h // 3)
        out = draw(frame(w, h, GREY), [pred((0.85, 0.05, 0.05, 0.05), box=box, source="detect")], CLASSES)
        rows = _colour_rows(out, class_colour(0), box[0], box[0] + box[2])
        heights[h] = len(rows[rows < box[1]])  # the label chip's height above the box
    assert heights[240] >= 13  # a 9 px cap height and its padding: readable
    assert heights[240] <= heights[480] <= heights[1080] <= 2 * heights[480]
    assert heights[1080] < 0.05 * 1080


def test_one_spelling_center_in_everything_shown():
    import inspect

    from knyang_cam import overlay

    assert "centre" not in "".join(v for _, v in overlay.HELP) + overlay.HINT
    out_detect = draw(frame(value=GREY), [pred((0.1, 0.7, 0.1, 0.1))], CLASSES, Hud(crop_mode="center"))
    assert out_detect.shape == (480, 640 + overlay.side_width((480, 640)), 3)
    assert '"centre' not in inspect.getsource(overlay)


def test_glyph_check_tells_fonts_with_and_without_a_script():
    fonts = text.system_fonts()
    latin = next((f for f in fonts if f.name == "DejaVuSans.ttf"), None)
    if latin is None:
        pytest.skip("DejaVu Sans is not installed (fonts-dejavu-core)")
    assert text._has_glyph(latin, ord("é")) and text._has_glyph(latin, ord("Ж"))
    assert not text._has_glyph(latin, ord("나"))  # DejaVu has no Hangul
    assert text.font_for("나비") != latin


def _chip(out, colour, box):
    """The (x0, y0, x1, y1) extent of `colour` outside `box` (the region's label chip), or None."""
    mask = np.all(out == colour, axis=2)
    x, y, w, h = box
    mask[max(0, y - 4):y + h + 4, max(0, x - 4):x + w + 4] = False  # the box's own outline
    ys, xs = np.nonzero(mask)
    return (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) if len(xs) else None


def test_labels_of_cats_side_by_side_do_not_print_over_each_other():
    w, h = 720, 1280  # a phone held upright: two cats close together, their tops level
    a = pred((0.85, 0.05, 0.05, 0.05), box=(178, 550, 180, 180), source="detect")
    b = pred((0.05, 0.05, 0.85, 0.05), box=(362, 555, 180, 180), source="detect")
    alone = draw(frame(w, h, GREY), [a], CLASSES, bars=False)
    both = draw(frame(w, h, GREY), [a, b], CLASSES, bars=False)
    ax0, ay0, ax1, ay1 = _chip(alone, class_colour(0), a.region.box)
    # The first cat's label is whole (its name and confidence), not half covered by its neighbour's.
    np.testing.assert_array_equal(both[ay0:ay1, ax0:ax1], alone[ay0:ay1, ax0:ax1])
    bx0, by0, bx1, by1 = _chip(both, class_colour(2), b.region.box)
    assert bx1 <= ax0 or bx0 >= ax1 or by1 <= ay0 or by0 >= ay1  # the second's label is elsewhere
    assert _interior_untouched(both, a.region.box, 5) and _interior_untouched(both, b.region.box, 5)


@pytest.mark.parametrize("source", ["detect", "center"])
def test_a_long_name_is_shortened_and_keeps_its_confidence_in_the_frame(source):
    w, h = 640, 480
    classes = ("Sir Reginald Fluffington-Whiskerbottom the Third of Mapleshire", "Eve", "Hwamok", "Leo")
    box = (80, 0, 480, 480) if source == "center" else (250, 150, 150, 150)
    p = pred((0.8, 0.1, 0.05, 0.05), box=box, source=source, classes=classes)
    out = draw(frame(w, h, GREY), [p], classes, bars=False)
    x0, _, x1, _ = _chip(out, class_colour(0), box)
    assert x1 - x0 <= w * 0.6  # not a band across the whole picture
    assert x1 < w - 1  # ends inside the frame: " 80%" is not cut off at its edge


def test_the_center_crop_tag_is_left_out_where_the_frame_has_no_room_for_it():
    w, h = 160, 120
    p = pred((0.1, 0.8, 0.05, 0.05), box=(20, 0, 120, 120), source="center")
    out = draw(frame(w, h, GREY), [p], CLASSES, bars=False)
    assert (out[:, w - 4:] == GREY).all()  # no text or panel running off the right edge


def _drawn_by_regions(img, preds):
    """What the regions put on a GREY frame (boxes, labels) and the cats inside the boxes."""
    mask = np.any(img != GREY, axis=2)
    for x, y, w, h in boxes(preds):
        mask[max(0, y):y + h, max(0, x):x + w] = True
    return mask


@pytest.mark.parametrize("size, cats", [
    ((640, 480), [(x, y, 200, 150) for x in (10, 430) for y in (40, 290)]),  # one in every corner
    ((160, 120), [(40, 40, 40, 40), (82, 42, 40, 40)]),  # two close cats on a small frame
    ((320, 240), [(106, 80, 80, 80), (223, 120, 40, 40)]),  # a wide label beside a small cat
])
def test_the_bars_cover_no_cat_and_no_label(size, cats):
    w, h = size
    preds = [pred((0.1, 0.6, 0.2, 0.1), box=b, source="detect") for b in cats]
    without = draw(frame(w, h, GREY), preds, CLASSES, bars=False)
    with_bars = draw(frame(w, h, GREY), preds, CLASSES)
    bars = np.any(with_bars != without, axis=2)
    assert not (bars & _drawn_by_regions(without, preds)).any()


def test_the_compact_bars_go_between_cats_in_every_corner():
    w, h = 640, 480
    cats = [pred((0.1, 0.6, 0.2, 0.1), box=(x, y, 200, 150), source="detect") for x in (10, 430) for y in (40, 290)]
    out = draw(frame(w, h, GREY), cats, CLASSES)
    runs = filled_runs(out, CLASSES, cats, hud=False)
    assert runs[1][1] == class_colour(1)  # drawn, with the winner highlighted


def test_the_window_shows_the_bars_beside_a_cat_that_fills_the_picture():
    # A cat close to the camera leaves no corner clear: the recording leaves the bars out (they would cover
    # the cat), the window draws them in its strip beside the picture and nothing of them over it.
    cat = pred((0.1, 0.6, 0.2, 0.1), box=(60, 30, 520, 450), source="detect")
    recorded = draw(frame(640, 480, GREY), [cat], CLASSES)
    assert recorded.shape == (480, 640, 3)
    np.testing.assert_array_equal(recorded, draw(frame(640, 480, GREY), [cat], CLASSES, bars=False))
    shown = draw(frame(640, 480, GREY), [cat], CLASSES, HUD)
    runs = filled_runs(shown, CLASSES, [cat])
    assert runs[1][1] == class_colour(1)
    for (run, _, width), p in zip(runs, cat.probs):
        assert abs(run - round(p * width)) <= 1, (run, p, width)
    hidden = draw(frame(640, 480, GREY), [cat], CLASSES, dataclasses.replace(HUD, show_bars=False))
    np.testing.assert_array_equal(shown[:, :640], hidden[:, :640])
    assert hidden.shape == shown.shape  # hiding the bars keeps the window's size


def test_a_narrow_window_shows_a_short_hint_rather_than_a_cut_one():
    w, h = 320, 240
    out = draw(frame(w, h, GREY), [], CLASSES, HUD)
    line = out[h - 15:, :]  # the key hint's row
    assert (line[:, w - 6:w].max(axis=2) < 60).all()  # nothing bright at the right edge: the hint ends inside
    assert (line.max(axis=2) > 150).sum() > 20  # ... and a hint is there


def test_saved_counts_of_names_in_different_scripts_are_drawn_with_glyphs_not_boxes():
    path = text.font_for("나비")
    if path is None or not has_glyph(path, "나"):
        pytest.skip("no font with Hangul on this machine (install fonts-nanum or fonts-noto-cjk)")
    # No one font need have Hangul and "Å" together: the whole line in one font drew 나비 as two boxes,
    # the same boxes as 비나.
    one = draw(frame(value=GREY), [], CLASSES, Hud(saved_counts={"나비": 1, "Ångström": 2}))
    two = draw(frame(value=GREY), [], CLASSES, Hud(saved_counts={"비나": 1, "Ångström": 2}))
    assert not np.array_equal(one, two)


def test_a_long_name_leaves_room_for_the_other_saved_counts():
    counts = {"Sir Reginald Fluffington-Whiskerbottom the Third of Mapleshire": 1, "Eve": 2, "Leo": 3}
    out = draw(frame(320, 240, GREY), [], CLASSES, Hud(saved_counts=counts))
    line = out[17:34]  # the second line of the top strip
    assert (line[:, -8:].max(axis=2) < 60).all()  # the line ends inside the frame
    assert (line.max(axis=2) > 150).any(axis=1).sum() >= 10  # at its legible size, not shrunk to 4 px
