"""The training report's figures (train/report.py) for class names in any script."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from train import evaluate, report  # noqa: E402

NAMES = ("Mochi", "나비", "Zoë")


def scores() -> evaluate.Scores:
    labels = np.array([0, 1, 2, 1])
    probs = np.eye(3)[[0, 1, 1, 2]]
    return evaluate.score(probs, labels, NAMES)


def test_a_korean_class_name_prints_no_matplotlib_warning(tmp_path):
    # A user's 나비 once made `python -m train` print four lines of UserWarning and source code
    # (fig.tight_layout() measured the names outside the filter that kept savefig quiet).
    pixels = np.zeros((2, 32, 32, 3), np.uint8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report.plot_confusion(tmp_path / "c.png", scores())
        report.plot_misclassified(tmp_path / "m.png", pixels, np.array([1, 2]), np.eye(3)[[2, 1]], NAMES,
                                  ["a.jpg", "b.jpg"])
    assert [str(w.message) for w in caught] == []
    assert (tmp_path / "c.png").stat().st_size > 0 and (tmp_path / "m.png").stat().st_size > 0


def test_misclassified_titles_of_long_class_names_stay_in_their_tiles(tmp_path):
    # A household of dog breeds' names: "american_pit_bull_terrier -> german_shorthaired 0.66" ran into the
    # next tile's title and the figure's top edge cut the first line off.
    n = 5
    pixels = np.zeros((n, 32, 32, 3), np.uint8)
    names = ("american_pit_bull_terrier", "german_shorthaired", "english_cocker_spaniel")
    probs = np.tile([[0.2, 0.7, 0.1]], (n, 1))
    fig = report.plot_misclassified(tmp_path / "m.png", pixels, np.zeros(n, int), probs, names,
                                    [f"{names[0]}_{i}.jpg" for i in range(n)])
    renderer = fig.canvas.get_renderer()
    titles = [ax.title.get_window_extent(renderer) for ax in fig.axes]
    assert all(fig.bbox.y0 <= t.y0 and t.y1 <= fig.bbox.y1 for t in titles)
    for ax, title in zip(fig.axes, titles):  # within its own tile's width: never into the neighbour's
        tile = ax.get_window_extent(renderer)
        assert title.width <= tile.width * 1.1, ax.title.get_text()
    for a, b in zip(titles, titles[1:]):
        assert a.x1 <= b.x0 or abs(a.y0 - b.y0) > 1
    none = report.plot_misclassified(tmp_path / "none.png", pixels[:1], np.ones(1, int), probs[:1], names, ["a.jpg"])
    [text] = [t.get_window_extent(none.canvas.get_renderer()) for t in none.texts]
    assert none.bbox.x0 + 10 <= text.x0 and text.x1 <= none.bbox.x1 - 10


def rendered(char: str) -> np.ndarray:
    fig = report._figure(1, 1)
    fig.text(0.5, 0.5, char, fontsize=40, ha="center", va="center")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())


def test_hangul_in_the_figures_is_drawn_with_glyphs_not_boxes():
    from knyang_cam import text

    if text.font_for("나비") is None:
        pytest.skip("no font with Hangul on this machine (install fonts-nanum or fonts-noto-cjk)")
    # DejaVu Sans, matplotlib's default, has no Hangul: 나 and 비 both came out as the same empty box.
    na, bi = (report.in_any_script(rendered)(c) for c in "나비")
    assert not np.array_equal(na, bi)


def test_a_class_without_photos_is_not_scored_in_the_json_either():
    # report/metrics.json gave a cat left out of Validation recall 0.0 while the printed table said "-".
    per_class = evaluate.score(np.eye(3)[[0, 1]], np.array([0, 1]), NAMES).to_json()["per_class"]
    assert per_class["Zoë"] == {"precision": None, "recall": None, "support": 0}
    assert per_class["Mochi"] == {"precision": 1.0, "recall": 1.0, "support": 1}


def test_the_per_class_table_lines_up_with_korean_names():
    import unicodedata

    def width(text):
        return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
                   for c in text)

    decomposed = "Zoe\u0308"  # how a macOS folder name spells Zoë
    header, *rows = evaluate.score(np.eye(3), np.arange(3), ("Mochi", "나비", decomposed)).lines()[1:]
    # Each line is as wide on a terminal as the header: the figures stand under their titles.
    assert {width(r) for r in rows} == {width(header)}, rows


def test_the_per_class_table_lines_up_when_the_names_are_shorter_than_its_title():
    header, *rows = evaluate.score(np.eye(2), np.arange(2), ("A", "Bo")).lines()[1:]
    assert {len(r) for r in rows} == {len(header)}, [header, *rows]
    assert all(r.index(".") == header.index("precision") + len("precision") - 4 for r in rows)
