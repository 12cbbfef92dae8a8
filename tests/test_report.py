import csv
import subprocess
import sys

import cv2
import numpy as np
import pytest

from knyang_cam.results import UNKNOWN, Prediction, Region
from knyang_cam.video_report import CSV_HEADER, VideoReport

CLASSES = ("Alpha", "Beta", "Gamma")
FPS = 30.0
CENTER = Region((80, 0, 480, 480), "center")


def pred(label, conf, region=CENTER):
    probs = [0.0] * len(CLASSES)
    if label in CLASSES:
        probs[CLASSES.index(label)] = conf
    return Prediction(region, label, conf, tuple(probs), 1)


def frame(i, w=640, h=480):
    """Frame i, its index in its colour (green i % 256, red i // 256, blue 0): see sheet_frames."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :, 1] = i % 256
    img[:, :, 2] = i // 256
    return img


def sheet_frames(path) -> list[int]:
    """The frames on a contact sheet, tile by tile, read back from each tile's centre pixel.

    The centre of a thumbnail is inside the centre region's box, so it keeps the frame's colour;
    an empty tile or the "no frames" sheet is grey, never blue 0.
    """
    sheet = cv2.imread(str(path))
    tile_w, tile_h = 240, 180 + 26  # thumbnail plus caption
    found = []
    for y in range(tile_h // 2 - 13, sheet.shape[0], tile_h):
        for x in range(tile_w // 2, sheet.shape[1], tile_w):
            b, g, r = (int(v) for v in sheet[y, x])
            if b == 0:
                found.append(r * 256 + g)
    return found


def feed(report, labels_confs):
    for i, preds in enumerate(labels_confs):
        report.add(i, i / FPS, frame(i), preds)


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_known_appearances_give_exact_csv_rows(tmp_path):
    seq = [[pred("Alpha", 0.9)]] * 30 + [[pred(UNKNOWN, 0.4)]] * 30 + [[pred("Beta", 0.8)]] * 30
    report = VideoReport(tmp_path / "r", CLASSES, FPS)
    feed(report, seq)
    paths = report.close()
    assert read_csv(paths["appearances"]) == [
        list(CSV_HEADER),
        ["Alpha", "0.000", "1.000", "30", "0.900"],
        ["Beta", "2.000", "3.000", "30", "0.800"],
    ]


def test_short_gaps_do_not_split_an_appearance_and_long_ones_do(tmp_path):
    # Alpha 0-29, unknown for 10 frames (0.33 s), Alpha 40-59, nothing for 30 frames (1 s), Alpha 90-99.
    seq = ([[pred("Alpha", 0.9)]] * 30 + [[pred(UNKNOWN, 0.3)]] * 10 + [[pred("Alpha", 0.7)]] * 20
           + [[]] * 30 + [[pred("Alpha", 0.6)]] * 10)
    report = VideoReport(tmp_path, CLASSES, FPS)
    feed(report, seq)
    rows = read_csv(report.close()["appearances"])[1:]
    assert rows == [
        ["Alpha", "0.000", "2.000", "50", f"{(30 * 0.9 + 20 * 0.7) / 50:.3f}"],
        ["Alpha", "3.000", "3.333", "10", "0.600"],
    ]


def test_two_cats_in_one_frame_and_two_regions_with_the_same_label(tmp_path):
    left, right = Region((0, 0, 100, 100), "detect"), Region((300, 0, 100, 100), "detect")
    seq = [[pred("Alpha", 0.9, left), pred("Beta", 0.7, right)]] * 15
    seq += [[pred("Alpha", 0.6, left), pred("Alpha", 0.8, right)]] * 15  # counted once, best region
    report = VideoReport(tmp_path, CLASSES, FPS)
    feed(report, seq)
    rows = read_csv(report.close()["appearances"])[1:]
    assert rows == [
        ["Alpha", "0.000", "1.000", "30", f"{(15 * 0.9 + 15 * 0.8) / 30:.3f}"],
        ["Beta", "0.000", "0.500", "15", "0.700"],
    ]


def test_files_exist_and_decode(tmp_path):
    names = ("Alpha", "나비", "Chloé")
    report = VideoReport(tmp_path / "out", names, FPS, keep=5)
    rng = np.random.default_rng(0)
    for i in range(200):
        label = names[(i // 50) % 3] if i % 7 else UNKNOWN
        report.add(i, i / FPS, frame(i), [pred_any(label, float(rng.uniform(0.3, 1.0)), names)])
    paths = report.close()
    assert set(paths) == {"timeline", "appearances", "least_confident"}
    for key in ("timeline", "least_confident"):
        img = cv2.imread(str(paths[key]))
        assert img is not None and img.shape[0] > 50 and img.shape[1] > 200
        assert img.std() > 5  # something is drawn, not a blank canvas
    sheet = cv2.imread(str(paths["least_confident"]))
    assert sheet.shape == (2 * (180 + 26), 4 * 240, 3)  # 5 tiles: 4 + 1
    rows = read_csv(paths["appearances"])
    assert rows[0] == list(CSV_HEADER) and {r[0] for r in rows[1:]} == set(names)
    # No temporary files left behind.
    assert sorted(p.name for p in paths["timeline"].parent.iterdir()) == [
        "appearances.csv", "least_confident.png", "timeline.png"]
    assert report.close() == paths


def pred_any(label, conf, classes):
    probs = [0.0] * len(classes)
    if label in classes:
        probs[classes.index(label)] = conf
    return Prediction(CENTER, label, conf, tuple(probs), 1)


def test_the_contact_sheet_shows_the_least_confident_frames_least_first(tmp_path):
    report = VideoReport(tmp_path, CLASSES, FPS, keep=8, spacing_s=0)
    rng = np.random.default_rng(1)
    confs = rng.uniform(0.0, 1.0, 2000)
    for i, c in enumerate(confs):
        report.add(i, i / FPS, frame(i), [pred("Alpha", float(c))])
    path = report.close()["least_confident"]
    assert cv2.imread(str(path)).shape == (2 * (180 + 26), 4 * 240, 3)  # 8 tiles
    assert sheet_frames(path) == np.argsort(confs)[:8].tolist()


def test_least_confident_frames_are_spread_out(tmp_path):
    # The 30 least confident frames are neighbours; with spacing 1 s only one of them is kept.
    confs = np.full(300, 0.9)
    confs[100:130] = np.linspace(0.1, 0.2, 30)
    confs[200] = 0.5
    report = VideoReport(tmp_path, CLASSES, FPS, keep=3, spacing_s=1.0)
    for i, c in enumerate(confs):
        report.add(i, i / FPS, frame(i), [pred("Alpha", float(c))])
    kept = sheet_frames(report.close()["least_confident"])
    assert 100 in kept and 200 in kept
    assert len([k for k in kept if 90 <= k < 130]) == 1


def test_frames_without_regions_are_not_candidates_and_empty_report_writes(tmp_path):
    report = VideoReport(tmp_path, CLASSES, FPS)
    feed(report, [[]] * 10)
    paths = report.close()
    assert sheet_frames(paths["least_confident"]) == []
    assert read_csv(paths["appearances"]) == [list(CSV_HEADER)]
    assert cv2.imread(str(paths["least_confident"])) is not None
    assert cv2.imread(str(paths["timeline"])) is not None


def test_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="fps"):
        VideoReport(tmp_path, CLASSES, 0)
    with pytest.raises(ValueError, match="keep"):
        VideoReport(tmp_path, CLASSES, FPS, keep=0)


@pytest.mark.slow  # a subprocess
def test_importing_report_does_not_import_matplotlib_or_tensorflow():
    code = ("import sys; import knyang_cam.video_report\n"
            "print(sorted(m for m in ('matplotlib', 'tensorflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_timeline_shades_each_lane_where_its_cat_was_seen_without_matplotlib(tmp_path):
    from knyang_cam.overlay import class_colour

    report = VideoReport(tmp_path, CLASSES, FPS)
    feed(report, [[pred("Alpha", 1.0)]] * 60 + [[pred("Beta", 0.5)]] * 60)
    img = cv2.imread(str(report.close()["timeline"]))
    # Lanes are rows of the plot: find each class colour's rows and columns.
    alpha = np.all(img == class_colour(0), axis=2)
    ys, xs = np.nonzero(alpha)
    assert len(xs) > 1000
    grey = np.all(img == (120, 120, 120), axis=2)
    plot = np.nonzero(grey[grey.sum(axis=1).argmax()])[0]  # the plot frame's top edge
    left, right = plot.min(), plot.max()
    middle = (left + right) / 2
    assert xs.min() <= left + 2 and abs(xs.max() - middle) <= 3  # the first half, no gaps
    assert set(range(xs.min(), xs.max() + 1)) <= set(xs)
    # Beta at half confidence: half way between its colour and white, in the second half.
    b = np.array(class_colour(1), float)
    half = np.all(np.abs(img.astype(float) - (b + 255) / 2) <= 2, axis=2)
    hx = np.nonzero(half)[1]
    assert len(hx) > 1000 and abs(hx.min() - middle) <= 3 and hx.max() >= right - 3
    out = subprocess.run([sys.executable, "-c", "import sys, knyang_cam.video_report\n"
                          "print('matplotlib' in sys.modules)"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_pause_in_a_variable_rate_video_is_shaded_as_the_appearances_count_it(tmp_path):
    # A screen recording writes no frame while nothing moves: a cat seen before and after a 2 s pause is one
    # appearance, on screen all along in the summary, but its lane was blank through the pause.
    from knyang_cam.overlay import class_colour

    report = VideoReport(tmp_path, CLASSES, FPS)
    times = [i / FPS for i in range(30)] + [3.0 + i / FPS for i in range(30)]
    for i, t in enumerate(times):
        report.add(i, t, frame(i), [pred("Alpha", 1.0)])
    assert [row[:4] for row in report.appearances()] == [("Alpha", 0.0, pytest.approx(4.0), 60)]
    img = cv2.imread(str(report.close()["timeline"]))
    xs = np.nonzero(np.all(img == class_colour(0), axis=2))[1]
    grey = np.all(img == (120, 120, 120), axis=2)
    plot = np.nonzero(grey[grey.sum(axis=1).argmax()])[0]
    assert xs.min() <= plot.min() + 2 and xs.max() >= plot.max() - 3
    assert set(range(xs.min(), xs.max() + 1)) <= set(xs)


def test_every_file_is_drawn_before_the_first_is_written(tmp_path, monkeypatch):
    from knyang_cam import video_report

    report = VideoReport(tmp_path / "rep", CLASSES, FPS)
    feed(report, [[pred("Alpha", 0.9)]] * 5)
    drawn = []
    real_png = video_report._png

    def png(image):  # the real encoder, failing on the second picture as a full disk or a Ctrl-C would
        if drawn:
            raise OSError("no space left on device")
        drawn.append(1)
        return real_png(image)

    monkeypatch.setattr(video_report, "_png", png)
    with pytest.raises(OSError):
        report.close()
    assert not (tmp_path / "rep").exists() or not any((tmp_path / "rep").iterdir())
    monkeypatch.setattr(video_report, "_png", real_png)
    folder_then = []
    paths = report.close(before_writing=lambda: folder_then.append(sorted((tmp_path / "rep").iterdir())))
    assert folder_then == [[]]  # nothing written before the hook: a run marks the folder there
    assert sorted(p.name for p in paths.values()) == ["appearances.csv", "least_confident.png", "timeline.png"]


def test_a_class_name_as_long_as_a_folder_name_gets_a_timeline(tmp_path):
    # Class names are folder names (up to 255 characters); a name wider than the picture left the plot
    # a negative width and the report, drawn last, ended the run with a traceback.
    names = ("Alpha", "Mr Whiskers the Magnificent " * 9, "Gamma")
    report = VideoReport(tmp_path / "out", names, FPS)
    for i in range(30):
        report.add(i, i / FPS, frame(i), [pred_any(names[1], 0.9, names)])
    timeline = cv2.imread(str(report.close()["timeline"]))
    assert timeline.shape[1] == 1000
    shaded = timeline[44 + 34 + 17, 500:970]  # the long name's lane, right half of the plot
    assert (shaded.astype(int).sum(axis=1) < 3 * 250).all()


def test_a_long_name_in_a_caption_is_shortened_before_its_percentage(tmp_path):
    classes = ("Sir Reginald Fluffington-Whiskerbottom the Third of Mapleshire", "Eve")
    report = VideoReport(tmp_path, classes, FPS)
    report.add(0, 0.0, frame(0), [pred_any(classes[0], 0.42, classes)])
    sheet = cv2.imread(str(report.close()["least_confident"]))
    caption = sheet[180:180 + 26, :]
    assert sheet.shape[1] == 240
    # The caption ends inside the tile (with "42%"), not cut off at its right edge.
    assert (caption[3:-3, 240 - 6:240 - 1].max(axis=2) < 120).all()
    assert (caption.max(axis=2) > 200).sum() > 50
