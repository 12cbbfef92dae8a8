"""The report/ folder of a model directory: metrics.json and three figures.

Figures are drawn with matplotlib's object API (Figure + Agg canvas), never
pyplot, so nothing here needs a display; the fallback fonts for class names
in other scripts are set only while a figure is drawn (`in_any_script`).
"""
from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .evaluate import Scores, Threshold
from .fit import PhaseHistory

METRICS_FILE = "metrics.json"
VALIDATION_RIGHT = "validation_photos_right"  # metrics.json: photo (relative to the dataset) -> top class right
CONFUSION_FILE = "confusion.png"
CURVES_FILE = "curves.png"
MISCLASSIFIED_FILE = "misclassified.png"
MAX_MISCLASSIFIED = 36


def read(model: str | Path) -> dict:
    """A model directory's report/metrics.json, or {} where it has none or it does not read (an older model)."""
    from knyang_cam.model_dir import REPORT_DIR

    try:
        metrics = json.loads((Path(model) / REPORT_DIR / METRICS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return metrics if isinstance(metrics, dict) else {}


def validation_right(model: str | Path) -> dict[str, bool]:
    """Which validation photos the model's top class named right at its training, by name within the dataset;
    written only when the model then learnt them (pipeline.finish), else {}."""
    right = read(model).get(VALIDATION_RIGHT)
    return {str(k): bool(v) for k, v in right.items()} if isinstance(right, dict) else {}


# Font files with Hangul and other CJK scripts (those knyang_cam/text.py draws names with), tried letter by
# letter after matplotlib's DejaVu Sans, which lacks them: a cat named 나비 drew as two boxes in confusion.png.
FALLBACK_FONTS = ("NotoSansCJK-Regular.ttc", "NotoSansCJKkr-Regular.otf", "NotoSansKR-Regular.ttf",
                  "NotoSansKR-Regular.otf", "NanumGothic.ttf", "NanumBarunGothic.ttf", "malgun.ttf",
                  "AppleSDGothicNeo.ttc", "AppleGothic.ttf", "unifont.ttf", "unifont.otf")


@functools.lru_cache(maxsize=1)
def _families() -> tuple[str, ...]:
    """DejaVu Sans, then the family names of the installed FALLBACK_FONTS."""
    from matplotlib import font_manager

    files = {Path(f).name: f for f in font_manager.findSystemFonts()}
    found = []
    for name in (n for n in FALLBACK_FONTS if n in files):
        try:
            # Added by file: matplotlib's own font list is cached once, often before fonts-nanum was installed.
            font_manager.fontManager.addfont(files[name])
            found.append(font_manager.FontProperties(fname=files[name]).get_name())
        except (OSError, RuntimeError, ValueError):  # an unreadable font file is no fallback, not a failed training
            continue
    return ("DejaVu Sans",) + tuple(dict.fromkeys(found))


def in_any_script(draw: Callable) -> Callable:
    """`draw` with the fallback fonts in force: a figure's texts take their font when created or drawn."""
    @functools.wraps(draw)
    def drawn(*args, **kwargs):
        from matplotlib import rc_context

        with rc_context({"font.family": list(_families())}):
            return draw(*args, **kwargs)
    return drawn


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> None:
    """Lay `fig` out and write it to `path`."""
    # A class name in a script no installed font has draws as boxes; matplotlib would also warn
    # once per letter, burying the summary line under dozens of lines. The layout measures the names too,
    # so it runs under the same filter.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from")
        fig.tight_layout()
        # Again, from where the first pass put the axes: it measured the misclassified tiles' titles
        # where they were before, and the top row's ran off the figure's top edge.
        fig.tight_layout()
        fig.savefig(path)


def write_metrics(path: Path, validation: Scores, threshold: Threshold,
                  phases: Sequence[PhaseHistory], test: Scores | None = None,
                  extra: dict | None = None) -> None:
    """Write metrics.json at `path`: validation (and test) scores, the threshold, each phase, `extra` keys."""
    data = {
        "validation": validation.to_json(),
        "test": test.to_json() if test is not None else None,
        "unknown_threshold": threshold.to_json(),
        "phases": {p.name: p.to_json() for p in phases},
        **(extra or {}),
    }
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


@in_any_script
def plot_confusion(path: Path, scores: Scores) -> None:
    """Draw the confusion counts of `scores` (rows true, columns predicted) as a PNG at `path`."""
    n = len(scores.classes)
    counts = np.array(scores.confusion)
    fig = _figure(1.2 + 0.8 * n, 1.0 + 0.8 * n)
    ax = fig.add_subplot()
    ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(n), scores.classes, rotation=45, ha="right")
    ax.set_yticks(range(n), scores.classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"validation accuracy {scores.accuracy:.3f}")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(counts[i, j]), ha="center", va="center",
                    color="white" if counts[i, j] > counts.max() / 2 else "black")
    _save(fig, path)


@in_any_script
def plot_curves(path: Path, phases: Sequence[PhaseHistory]) -> None:
    """Accuracy and loss per epoch, the phases one after another on a shared epoch axis."""
    fig = _figure(10, 4)
    axes = fig.subplots(1, 2)
    offset = 0
    for phase in phases:
        epochs = np.arange(offset + 1, offset + phase.epochs + 1)
        for ax, key in zip(axes, ("accuracy", "loss")):
            ax.plot(epochs, getattr(phase, key), label=f"{phase.name} train")
            ax.plot(epochs, getattr(phase, "val_" + key), "--", label=f"{phase.name} validation")
            if offset:
                ax.axvline(offset + 0.5, color="grey", linewidth=0.8)
        offset += phase.epochs
    for ax, key in zip(axes, ("accuracy", "loss")):
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _save(fig, path)


@in_any_script
def plot_misclassified(path: Path, pixels: np.ndarray, labels: np.ndarray, probs: np.ndarray,
                       classes: Sequence[str], paths: Sequence[Path]):
    """Tile up to MAX_MISCLASSIFIED photos whose argmax is wrong, titled true -> predicted, as a PNG at `path`;
    returns the matplotlib Figure (its layout can be checked)."""
    wrong = np.flatnonzero(probs.argmax(axis=1) != labels)[:MAX_MISCLASSIFIED]
    cols = max(1, min(6, len(wrong)))
    rows = max(1, -(-len(wrong) // cols))
    fig = _figure(2.4 * cols, 2.6 * rows)
    if not len(wrong):
        # Two lines: one ran from edge to edge of the tile.
        fig.text(0.5, 0.5, "no misclassified\nvalidation photos", ha="center", va="center")
    for k, i in enumerate(wrong):
        ax = fig.add_subplot(rows, cols, k + 1)
        ax.imshow(pixels[i])
        pred = int(probs[i].argmax())
        # A line each, each shortened: two long names on one line ran into the next tile's title.
        ax.set_title(f"{_shortened(classes[labels[i]])} ->\n{_shortened(classes[pred])} {probs[i, pred]:.2f}\n"
                     f"{_shortened(Path(paths[i]).name)}", fontsize=7)
        ax.axis("off")
    _save(fig, path)
    return fig


def _shortened(name: str, keep: int = 30) -> str:
    """A long file name cut in the middle, so a tile's title stays within the tile."""
    return name if len(name) <= keep else name[:keep // 2 - 1] + "..." + name[-(keep // 2 - 2):]
