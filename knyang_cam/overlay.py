"""Pure drawing of the live view and the recorded video: `draw(frame, predictions, classes, hud)`.

No model library is imported here (a test checks), so the overlay can be drawn
and tested on plain arrays. Everything scales with the frame size (320x240 to
1920x1080) from one unit, `_Scale`.

Layout: each region's box with its name and confidence in large type beside the box
(above it, else below, else at its side: never over the cat nor another cat's name; a long name
shortened to half the frame); "no cat" when there is no region. The confidence bars of the largest
region: in the window, in a strip beside the picture (`side_width`), where they never cover a cat
and are always there, however much of the picture the cats fill; in a recording, which keeps the
source's size, in the corner that covers no cat (compact, in a corner or between the cats, when
every corner would; left out where even that covers a found cat or a name). Bars are drawn for one
prediction only: with several cats each box carries its own name and confidence. The window adds
the HUD (`Hud`): a dark strip at the top (FPS, stage timings, crop mode, saved counts), one at the
bottom (status line, key hint), toasts and the help; a recording leaves it out.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType

import cv2
import numpy as np

from .results import SOURCES, UNKNOWN, Box, Prediction, intersection
from .text import fit, put_text, text_width, widest

# Tableau 10, BGR: distinct, and readable against the dark panels.
PALETTE = (
    (167, 121, 78), (43, 142, 242), (89, 87, 225), (178, 183, 118), (79, 161, 89),
    (72, 201, 237), (161, 122, 176), (167, 157, 255), (95, 117, 156), (172, 176, 186),
)
UNKNOWN_COLOUR = (150, 150, 150)
BAR_COLOUR = (200, 200, 200)  # bars of the classes that are not the shown name
TRACK_COLOUR = (70, 70, 70)  # the empty part of a bar
TEXT = (255, 255, 255)
DIM_TEXT = (200, 200, 200)
STATUS_COLOUR = (80, 200, 255)
TOAST_COLOUR = (90, 170, 60)
PANEL_DARKEN = 0.35  # panels keep 35% of the picture's brightness behind them
SIDE_COLOUR = (32, 32, 32)  # the window's strip beside the picture
SIDE_PANEL = 260  # the bars' width there at 640x480: wider than in a frame's corner, so "Chungdam" is not cut
NO_CAT = "no cat"

HINT = ("q quit  space pause  s snapshot  1-9 label  u unlabeled  x not mine  n new cat  t retrain  c crop  "
        "b bars  h help")
SHORT_HINT = "q quit  h help"  # where the whole hint would not be legible (a 320x240 window)
MIN_HINT_PX = 6  # the smallest cap height the hint is drawn at; below it the short hint
HELP = (
    ("q / Esc", "quit"),
    ("space", "pause / resume"),
    ("s", "save the full frame to snapshots/"),
    ("1-9", "save the crop as a training image of class N"),
    ("u", "save the crop as unlabeled"),
    ("x", "save the crop as not one of my cats"),
    ("n", "add a new cat: type its name, Enter"),
    ("t", "retrain on the labelled images in the background"),
    ("c", "switch center / detect crop"),
    ("b", "confidence bars on / off"),
    ("h", "show / hide this help"),
)


def _frozen_map(m: Mapping) -> Mapping:
    return MappingProxyType(dict(m))


@dataclass(frozen=True)
class Hud:
    """Everything on screen besides the predictions, for one frame."""

    fps: float = 0.0
    timing_ms: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    crop_mode: str = "center"
    show_bars: bool = True
    show_help: bool = False
    paused: bool = False
    toast: str | None = None  # e.g. "saved snapshots/2024-05-01_12-00-00.jpg"
    status: str | None = None  # e.g. "camera lost, reconnecting 2/3"
    saved_counts: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    label_keys: tuple[str, ...] = ()  # the cats of number keys 1-9, in order (a cat added with n has one too)

    def __post_init__(self):
        if self.fps < 0:
            raise ValueError(f"fps must be >= 0, got {self.fps}")
        if self.crop_mode not in SOURCES:
            raise ValueError(f"crop_mode must be one of {SOURCES}, got {self.crop_mode!r}")
        # Copies, so that a caller mutating its dict cannot change a frozen Hud.
        object.__setattr__(self, "timing_ms", _frozen_map(self.timing_ms))
        object.__setattr__(self, "saved_counts", _frozen_map(self.saved_counts))
        object.__setattr__(self, "label_keys", tuple(self.label_keys))


def class_colour(index: int) -> tuple[int, int, int]:
    """The BGR colour of the class at `index`; the palette repeats after ten."""
    return PALETTE[index % len(PALETTE)]


def label_colour(label: str, classes: Sequence[str]) -> tuple[int, int, int]:
    """The BGR colour of `label`: its class's colour, grey for unknown or any name not in `classes`."""
    if label in classes:
        return class_colour(list(classes).index(label))
    return UNKNOWN_COLOUR


def _ink_on(colour) -> tuple[int, int, int]:
    """Black or white text, whichever reads better on `colour`."""
    b, g, r = colour
    return (20, 20, 20) if 0.114 * b + 0.587 * g + 0.299 * r > 150 else TEXT


@dataclass(frozen=True)
class _Scale:
    """Sizes in pixels for one frame size: 1.0 at 640x480.

    Type grows slower than the frame (a 1080p frame is 2.25x as high as 480p, its text 1.6x)
    and never shrinks below 0.8, so names stay readable at 320x240 and modest at 1080p.
    """

    s: float

    @classmethod
    def of(cls, shape) -> _Scale:
        h, w = shape[:2]
        linear = min(w / 640.0, h / 480.0)
        return cls(max(0.8, linear) if linear < 1 else linear ** 0.6)

    def px(self, v: float) -> int:
        return max(1, round(v * self.s))

    @property
    def small(self) -> int:  # cap height of the HUD lines
        return max(8, self.px(11))

    @property
    def line(self) -> int:  # height of one HUD line, including spacing
        return round(self.small * 1.9)

    @property
    def margin(self) -> int:
        return self.px(8)

    def label_px(self, box_w: int) -> int:
        """Cap height of a region's name: large, but never wider than a small box allows."""
        return max(max(9, self.px(12)), min(self.px(18), round(box_w / 7)))


def _darken(img: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> None:
    """A semi-transparent black panel: scale the pixels underneath (cheaper than a blend)."""
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(img.shape[1], x1), min(img.shape[0], y1)
    if x0 < x1 and y0 < y1:
        img[y0:y1, x0:x1] = cv2.convertScaleAbs(img[y0:y1, x0:x1], alpha=PANEL_DARKEN)


def _top_height(sc: _Scale, hud: Hud | None) -> int:
    if hud is None:
        return 0
    return sc.line * (2 if hud.saved_counts else 1)


def _bottom_height(sc: _Scale, hud: Hud | None) -> int:
    # Room for the status line is kept even when there is none, so the labels do not jump.
    return sc.line * 2 if hud is not None else 0


def _label_zone(box: Box, sc: _Scale) -> Box:
    """A region's box with room for its label above and below: what the bars must keep clear of."""
    x, y, w, h = box
    lh = sc.label_px(w) * 5 // 3 + sc.px(3)
    return (x, y - lh, w, h + 2 * lh)


def bar_tracks(shape, classes: Sequence[str], font: str | None = None, boxes: Sequence[Box] = (),
               hud: bool = True, labels: Sequence[Box] = ()) -> list[Box]:
    """Where the confidence bars go for a frame of `shape` with regions at `boxes` and their
    labels drawn at `labels`: one (x, y, w, h) per class, in the picture `draw` returns.

    With `hud` (the window) the panel fills the strip beside the frame (x from the frame's width on),
    below the top HUD strip's height. Without (a recording), it goes to the corner of the frame that
    covers the least of the regions and their labels; when every corner would cover a cat, it shrinks,
    and goes to a corner or, failing that, a place between the cats that covers none. Rows shrink
    to fit the height, so 20 classes fit on a 320x240 frame. The class names are drawn left of the
    tracks (a column as wide as the longest name, up to 40% of the panel), the percentages right of them.
    """
    if hud:
        return list(_side_layout(tuple(shape[:2]), tuple(classes), font)[1])
    return list(_bar_layout(tuple(shape[:2]), tuple(classes), font, tuple(map(tuple, boxes)),
                            tuple(map(tuple, labels)))[1])


def side_width(shape) -> int:
    """The width of the window's strip beside a frame of `shape` (height, width): the bars' panel and margins."""
    sc = _Scale.of(shape)
    return sc.px(SIDE_PANEL) + 2 * sc.margin


def shown_size(size: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of the window's picture, the HUD's and bars' strip included, for frames of `size`."""
    w, h = size
    return w + side_width((h, w)), h


@lru_cache(maxsize=64)
def _side_layout(shape: tuple[int, int], classes: tuple[str, ...], font: str | None) -> tuple[Box, tuple[Box, ...]]:
    """The panel (x, y, w, h) and tracks in the window's strip beside a frame of `shape`."""
    h, w = shape
    sc = _Scale.of(shape)
    top, bottom = sc.line * 2 + sc.margin, h - sc.margin  # level with the picture below the top strip
    pw, ph, rows = _panel(sc, w, top, bottom, classes, font, compact=False, width=sc.px(SIDE_PANEL))
    x0 = w + sc.margin
    return (x0, top, pw, ph), tuple((x0 + x, top + y, bw, bh) for x, y, bw, bh in rows)


@lru_cache(maxsize=64)
def _bar_layout(shape: tuple[int, int], classes: tuple[str, ...], font: str | None,
                boxes: tuple[Box, ...], labels: tuple[Box, ...] = ()) -> tuple[Box, tuple[Box, ...]]:
    """The panel (x, y, w, h) and the tracks of `bar_tracks` in a recording's frame, cached: they only
    change with the frame size, classes, boxes or labels."""
    h, w = shape[:2]
    sc = _Scale.of(shape)
    top, bottom = sc.margin, h - sc.margin
    zones = [_label_zone(b, sc) for b in boxes] + list(labels)
    best = None
    # The full panel in a corner; else the compact one in a corner; else the compact one between the
    # cats (four cats in the four corners leave the middle free). The first place that covers least wins.
    for rank, (compact, anywhere) in enumerate(((False, False), (True, False), (True, True))):
        layout = _panel(sc, w, top, bottom, classes, font, compact)
        pw, ph = layout[0], layout[1]
        for x0, y0 in _panel_places(sc, w, top, bottom, pw, ph, anywhere):
            covered = sum(intersection((x0, y0, pw, ph), z) for z in zones)
            if best is None or (covered, rank) < best[0]:
                best = ((covered, rank), x0, y0, layout)
        if best[0][0] == 0:
            break
    _, x0, y0, (pw, ph, rows) = best
    return (x0, y0, pw, ph), tuple((x0 + x, y0 + y, bw, bh) for x, y, bw, bh in rows)


def _panel_places(sc: _Scale, w: int, top: int, bottom: int, pw: int, ph: int,
                  anywhere: bool) -> tuple[tuple[int, int], ...]:
    """Top-left corners for a pw x ph panel: the frame's four corners, bottom ones first; with
    `anywhere`, a 5 x 5 grid between them, bottom row first."""
    left, right, low = sc.margin, w - sc.margin - pw, bottom - ph
    if not anywhere:
        return (left, low), (right, low), (left, top), (right, top)
    return tuple((left + (right - left) * i // 4, low - (low - top) * j // 4) for j in range(5) for i in range(5))


def _panel(sc: _Scale, w: int, top: int, bottom: int, classes: tuple[str, ...], font, compact: bool,
           width: int | None = None):
    """(panel width, panel height, tracks relative to the panel's top-left corner); `width` (the window's
    strip) in place of the width that fits a frame `w` wide."""
    n = max(1, len(classes))
    row = max(3, min(sc.px(15 if compact else 20), (bottom - top - 2 * sc.px(6)) // n))
    natural = max(sc.px(200), min(sc.px(300), round(w * 0.32)))
    panel_w = width or min(w - 2 * sc.margin, sc.px(170) if compact else natural)
    px = _row_px(row)
    name_w = min(round(panel_w * 0.4), widest(classes, px, True, font)) + sc.px(8)
    pct_w = text_width("100%", px, True) + sc.px(8)
    x = sc.px(6) + name_w
    bar_w = max(4, panel_w - name_w - pct_w - sc.px(12))
    bar_h = max(2, round(row * 0.6))
    pad = sc.px(6)
    rows = tuple((x, pad + i * row + (row - bar_h) // 2, bar_w, bar_h) for i in range(n))
    return panel_w, n * row + 2 * pad, rows


def _row_px(row: int) -> int:
    return max(4, round(row * 0.55))


def _draw_bars(img, pred: Prediction, classes: Sequence[str], sc: _Scale, font, panel: Box,
               tracks: Sequence[Box]) -> None:
    x0, y0, pw, ph = panel
    row = tracks[1][1] - tracks[0][1] if len(tracks) > 1 else ph
    px = _row_px(row)
    name_x = x0 + sc.px(6)
    name_room = tracks[0][0] - name_x - sc.px(8)
    _darken(img, x0, y0, x0 + pw, y0 + ph)
    winner = classes.index(pred.label) if pred.label in classes else -1
    for i, (name, p) in enumerate(zip(classes, pred.probs)):
        tx, ty, tw, th = tracks[i]
        is_winner = i == winner
        cv2.rectangle(img, (tx, ty), (tx + tw - 1, ty + th - 1), TRACK_COLOUR, -1)
        filled = round(min(1.0, max(0.0, p)) * tw)
        if filled:
            colour = class_colour(i) if is_winner else BAR_COLOUR
            cv2.rectangle(img, (tx, ty), (tx + filled - 1, ty + th - 1), colour, -1)
        base = ty + th // 2 + px // 2
        ink = TEXT if is_winner else DIM_TEXT
        put_text(img, fit(name, px, name_room, is_winner, font), name_x, base, px, ink,
                 bold=is_winner, font=font)
        put_text(img, f"{p * 100:.0f}%", tx + tw + sc.px(6), base, px, ink, bold=is_winner)


@lru_cache(maxsize=64)
def _dashes(start: int, stop: int, dash: int) -> np.ndarray:
    """Offsets (from `start`) of the pixels in the drawn dashes of the span [start, stop)."""
    return np.flatnonzero((np.arange(start, stop) // dash) % 2 == 0)


def _dashed_rect(img, box: Box, colour, thickness: int, dash: int) -> None:
    """A dashed box, drawn with array slicing: four numpy writes instead of a line per dash."""
    x, y, w, h = box
    H, W = img.shape[:2]
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(W, x + w), min(H, y + h)
    if x0 >= x1 or y0 >= y1:
        return
    t = thickness
    on_x, on_y = _dashes(x0, x1, dash), _dashes(y0, y1, dash)
    colour = np.asarray(colour, np.uint8)
    for ys in (slice(y0, min(y1, y0 + t)), slice(max(y0, y1 - t), y1)):
        seg = img[ys, x0:x1]
        seg[:, on_x] = colour
    for xs in (slice(x0, min(x1, x0 + t)), slice(max(x0, x1 - t), x1)):
        seg = img[y0:y1, xs]
        seg[on_y, :] = colour


def _label_place(box: Box, size: tuple[int, int], shape, top: int, bottom: int,
                 avoid: Sequence[Box] = ()) -> tuple[int, int]:
    """Top-left corner of a label of `size` for a region at `box`, off the cat: above the box,
    else below it, else beside it, else (a box as high as the frame) in its top corner.

    Of the places inside the frame, the first that covers the least of `avoid` (the cats' boxes and
    the labels already drawn) wins, so the labels of two cats side by side do not print over each other.
    """
    H, W = shape[:2]
    x, y, w, h = box
    lw, lh = size
    cx = min(max(0, x), max(0, W - lw))
    cy = min(max(top, y), max(top, H - bottom - lh))
    places = [(cx, y - lh) if y - lh >= top else None,
              (cx, y + h) if y + h + lh <= H - bottom else None,
              (x - lw, cy) if x - lw >= 0 else None,
              (x + w, cy) if x + w + lw <= W else None]
    places = [p for p in places if p is not None] + [(cx, cy)]
    return min(places, key=lambda p: sum(intersection((*p, lw, lh), a) for a in avoid))


def _draw_region(img, pred: Prediction, classes, sc: _Scale, top: int, bottom: int, font,
                 avoid: Sequence[Box] = ()) -> Box:
    """Draw the region's box and its label (placed clear of `avoid`); returns the label's (x, y, w, h)."""
    colour = label_colour(pred.label, classes)
    x, y, w, h = pred.region.box
    thickness = sc.px(3)
    if pred.region.source == "center":
        _dashed_rect(img, pred.region.box, colour, thickness, sc.px(14))
    else:
        cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), colour, thickness)
    px = sc.label_px(w)
    pad = max(2, px // 3)
    W = img.shape[1]
    # A long name is shortened ("Sir Reginald Fl.. 80%") to half the frame, or the box's width when
    # wider (a 160 px frame still shows "Chungdam 80%"): it must not cover the picture, nor push its
    # confidence out of the frame.
    room = min(W, max(w, W // 2, sc.px(160))) - 2 * pad
    suffix = "" if pred.label == UNKNOWN else f" {pred.confidence * 100:.0f}%"
    text = fit(pred.label, px, room, True, font, suffix)
    tw = text_width(text, px, True, font)
    # The center crop says so beside the name: the whole middle is classified, not a found cat.
    # Where the frame has no room for it (a narrow frame), the dashed box alone says so.
    tag = "center crop" if pred.region.source == "center" else ""
    tag_px = sc.small
    tag_w = text_width(tag, tag_px) + 2 * pad if tag else 0
    lw, lh = tw + 2 * pad, px + 2 * pad
    if lw + tag_w > W:
        tag, tag_w = "", 0
    cx, cy = _label_place(pred.region.box, (lw + tag_w, lh), img.shape, top, bottom, avoid)
    cv2.rectangle(img, (cx, cy), (cx + lw - 1, cy + lh - 1), colour, -1)
    put_text(img, text, cx + pad, cy + pad + px, px, _ink_on(colour), bold=True, font=font)
    if tag:
        _darken(img, cx + lw, cy, cx + lw + tag_w, cy + lh)
        put_text(img, tag, cx + lw + pad, cy + (lh + tag_px) // 2, tag_px, colour)
    return cx, cy, lw + tag_w, lh


def _draw_no_cat(img, sc: _Scale, top: int) -> None:
    """A quiet note that nothing was found: no box, no name."""
    px, pad = sc.small, sc.px(5)
    tw = text_width(NO_CAT, px)
    x0, y0 = sc.margin, top + sc.margin
    _darken(img, x0, y0, x0 + tw + 2 * pad, y0 + px + 2 * pad)
    put_text(img, NO_CAT, x0 + pad, y0 + pad + px, px, DIM_TEXT)


def _timing_text(hud: Hud) -> str:
    parts = [f"{hud.fps:.0f} FPS"]
    if hud.timing_ms:
        parts.append("  ".join(f"{k} {v:.1f}" for k, v in hud.timing_ms.items()) + " ms")
    parts.append(f"crop {hud.crop_mode}")
    return "   ".join(parts)


def _line_width(parts: Sequence[str], px: int, font=None) -> int:
    """The width of `parts` drawn one after another, three spaces apart (as `_put_parts` does)."""
    return sum(text_width(p, px, font=font) for p in parts) + text_width("   ", px) * (len(parts) - 1)


def _put_parts(img, parts: Sequence[str], x: int, y: int, px: int, colour, font=None) -> None:
    """`parts` left to right, three spaces apart, each drawn on its own: each finds a font with all
    its glyphs, where one font for the whole line ("나비 1   Åsa 2") would draw some as boxes."""
    gap = text_width("   ", px)
    for part in parts:
        put_text(img, part, x, y, px, colour, font=font)
        x += text_width(part, px, font=font) + gap


def _fit_px(text: str | Sequence[str], px: int, room: int, font=None) -> int:
    """The cap height at which `text` (or parts, as `_line_width` measures them) fits `room` pixels:
    `px` or smaller, never below 4.

    Stepped down rather than scaled: Hershey text is relatively wider at small sizes (its strokes
    do not thin below one pixel), so a proportional guess came out too wide and was cut off."""
    parts = (text,) if isinstance(text, str) else tuple(text)
    px = max(4, min(px, px * room // max(1, _line_width(parts, px, font))))
    while px > 4 and _line_width(parts, px, font) > room:
        px -= 1
    return px


def _draw_top(img, hud: Hud, sc: _Scale, font) -> None:
    W = img.shape[1]
    _darken(img, 0, 0, W, _top_height(sc, hud))
    base = sc.line // 2 + sc.small // 2
    room = W - 2 * sc.margin
    if hud.paused:
        px = sc.small
        tw = text_width("PAUSED", px, True)
        pad = sc.px(4)
        x0 = W - tw - 2 * pad - sc.margin
        cv2.rectangle(img, (x0, base - px - pad), (x0 + tw + 2 * pad, base + pad), (40, 40, 220), -1)
        put_text(img, "PAUSED", x0 + pad, base, px, TEXT, bold=True)
        room = x0 - 2 * sc.margin
    timing = _timing_text(hud)
    put_text(img, timing, sc.margin, base, _fit_px(timing, sc.small, room), TEXT, volatile=True)
    if hud.saved_counts:
        # A long name is shortened, so that the other classes' counts still fit the line.
        counts = ["saved"] + [f"{fit(k, sc.small, sc.px(120), font=font)} {v}" for k, v in hud.saved_counts.items()]
        _put_parts(img, counts, sc.margin, base + sc.line, _fit_px(counts, sc.small, W - 2 * sc.margin, font),
                   DIM_TEXT, font)


def _draw_bottom(img, hud: Hud, sc: _Scale, font) -> None:
    H, W = img.shape[:2]
    y0 = H - _bottom_height(sc, hud)
    status_y = y0 + sc.line // 2 + sc.small // 2
    if hud.status:
        _darken(img, 0, y0, W, H)
        put_text(img, hud.status, sc.margin, status_y, sc.small, STATUS_COLOUR, font=font)
    else:
        _darken(img, 0, H - sc.line, W, H)
    # The hint shrinks rather than loses its last keys on narrow frames; where it would be too small
    # to read, it says only how to quit and where the keys are listed.
    room = W - 2 * sc.margin
    hint = HINT if _fit_px(HINT, sc.small, room) >= MIN_HINT_PX else SHORT_HINT
    put_text(img, hint, sc.margin, status_y + sc.line, _fit_px(hint, sc.small, room), DIM_TEXT)


def _draw_toast(img, toast: str, sc: _Scale, font) -> None:
    H, W = img.shape[:2]
    px = max(sc.small, sc.px(16))
    pad = sc.px(10)
    toast = fit(toast, px, W - 2 * pad - 2 * sc.margin, True, font)
    tw = text_width(toast, px, True, font)
    x0 = (W - tw) // 2 - pad
    y0 = round(H * 0.22)
    cv2.rectangle(img, (x0, y0), (x0 + tw + 2 * pad, y0 + px + 2 * pad), TOAST_COLOUR, -1)
    put_text(img, toast, x0 + pad, y0 + pad + px, px, TEXT, bold=True, font=font)


def _draw_help(img, label_keys: Sequence[str], sc: _Scale, font) -> None:
    H, W = img.shape[:2]
    px = max(sc.small, sc.px(13))
    rows = list(HELP) + [(str(i + 1), name) for i, name in enumerate(label_keys[:9])]
    pad = sc.px(16)
    # Smaller type where the rows would not fit: at 640x480, keys 7 to 9 of a household of nine fell off the frame.
    px = max(6, min(px, int((H - 2 * sc.margin - 2 * pad) / ((len(rows) + 4 / 3) * 1.9))))
    line = round(px * 1.9)
    key_w = widest([k for k, _ in rows], px, True) + sc.px(16)
    text_w = widest([v for _, v in rows], px, False, font)
    pw = min(W - 2 * sc.margin, key_w + text_w + 2 * pad)
    ph = min(H - 2 * sc.margin, line * (len(rows) + 1) + 2 * pad)
    x0, y0 = (W - pw) // 2, (H - ph) // 2
    _darken(img, x0, y0, x0 + pw, y0 + ph)
    _darken(img, x0, y0, x0 + pw, y0 + ph)  # twice: the help text must read on any picture
    y = y0 + pad + px
    put_text(img, "Keys", x0 + pad, y, px, TEXT, bold=True)
    for i, (key, what) in enumerate(rows):
        y += line
        if i == len(HELP):
            y += line // 3  # a little gap before the class numbers
        put_text(img, key, x0 + pad, y, px, STATUS_COLOUR, bold=True)
        put_text(img, what, x0 + pad + key_w, y, px, TEXT, font=font)


def draw(frame: np.ndarray, predictions: Sequence[Prediction], classes: Sequence[str],
         hud: Hud | None = None, font: str | None = None, bars: bool = True) -> np.ndarray:
    """Return a new BGR uint8 frame with the predictions drawn; `frame` is not touched.

    Each region gets its box, and its name and confidence beside the box; the confidence bars
    of the largest region go where they cover no cat; no region at all reads "no cat". `hud`
    makes it the window's picture: the HUD's strips (FPS, timings, saved counts, status, key hint),
    toast and help over the frame, and the bars (`show_bars` in place of `bars`) in a strip beside
    it, so the picture is `side_width` wider than the frame; a recorded video leaves the HUD out
    and keeps the frame's size. `font` is a TrueType/OpenType file for text Hershey cannot draw
    (non-ASCII); None searches the system's.
    """
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be BGR uint8 [H, W, 3], got {frame.dtype} {frame.shape}")
    classes = tuple(classes)
    img = frame.copy()
    sc = _Scale.of(img.shape)
    top, bottom = _top_height(sc, hud), _bottom_height(sc, hud)
    # Smaller regions last, so a small face inside a big box keeps its label visible.
    ordered = sorted(predictions, key=lambda p: p.region.box[2] * p.region.box[3], reverse=True)
    boxes = [p.region.box for p in ordered]
    labels: list[Box] = []
    for pred in ordered:
        labels.append(_draw_region(img, pred, classes, sc, top, bottom, font, boxes + labels))
    if not ordered:
        _draw_no_cat(img, sc, top)
    if hud is None:
        if ordered and bars and len(ordered[0].probs) == len(classes):
            panel, tracks = _bar_layout(img.shape[:2], classes, font, tuple(boxes), tuple(labels))
            # Where even the compact panel would cover a found cat or a name (a small frame, cats all over
            # it), it is left out: each box carries its name and confidence. The centre square may be covered.
            found = [p.region.box for p in ordered if p.region.source == "detect"]
            if not any(intersection(panel, r) for r in found + labels):
                _draw_bars(img, ordered[0], classes, sc, font, panel, tracks)
        return img
    _draw_top(img, hud, sc, font)
    _draw_bottom(img, hud, sc, font)
    if hud.toast:
        _draw_toast(img, hud.toast, sc, font)
    if hud.show_help:
        _draw_help(img, hud.label_keys, sc, font)
    # A cat close to the camera fills the picture, and then no place in it leaves the cat clear for the
    # bars (the demo clip in detect mode: 29 frames of 190 had room in the window): the window shows them beside it.
    shown = cv2.copyMakeBorder(img, 0, 0, 0, side_width(img.shape), cv2.BORDER_CONSTANT, value=SIDE_COLOUR)
    if ordered and hud.show_bars and len(ordered[0].probs) == len(classes):
        panel, tracks = _side_layout(img.shape[:2], classes, font)
        _draw_bars(shown, ordered[0], classes, sc, font, panel, tracks)
    return shown
