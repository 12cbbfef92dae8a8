"""Pure drawing of the live view: `draw(frame, predictions, classes, hud) -> new frame`.

No model library is imported here (a test checks), so the overlay can be drawn
and tested on plain arrays. Everything scales with the frame size (320x240 to
1920x1080) from one unit, `_Scale`.

Layout: a dark strip at the top (FPS, stage timings, crop mode, saved counts),
one at the bottom (status line, key hint); each region's box with its name and
confidence in large type; the confidence bars at the bottom left, above the
bottom strip. Bars are drawn for the primary prediction only (the largest
region): with several cats each box carries its own name and confidence, and
one panel of up to 20 bars per cat would cover the picture.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Mapping, Optional, Sequence

import cv2
import numpy as np

from .results import SOURCES, UNKNOWN, Box, Prediction
from .text import put_text, text_width, widest

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

HINT = ("q quit  space pause  s snapshot  1-9 label  u unlabeled  x not mine  n new cat  t retrain  c crop  "
        "b bars  h help")
HELP = (
    ("q / Esc", "quit"),
    ("space", "pause / resume"),
    ("s", "save the full frame to snapshots/"),
    ("1-9", "save the crop as a training image of class N"),
    ("u", "save the crop as unlabeled"),
    ("x", "save the crop as not one of my cats"),
    ("n", "add a new cat: type its name, Enter"),
    ("t", "retrain on the labelled images in the background"),
    ("c", "switch centre / detect crop"),
    ("b", "confidence bars on / off"),
    ("h", "show / hide this help"),
)


def hint_line() -> str:
    return HINT


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
    toast: Optional[str] = None  # e.g. "saved snapshots/2024-05-01_12-00-00.jpg"
    status: Optional[str] = None  # e.g. "camera lost, reconnecting 2/3"
    saved_counts: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self):
        if self.fps < 0:
            raise ValueError(f"fps must be >= 0, got {self.fps}")
        if self.crop_mode not in SOURCES:
            raise ValueError(f"crop_mode must be one of {SOURCES}, got {self.crop_mode!r}")
        # Copies, so that a caller mutating its dict cannot change a frozen Hud.
        object.__setattr__(self, "timing_ms", _frozen_map(self.timing_ms))
        object.__setattr__(self, "saved_counts", _frozen_map(self.saved_counts))


def class_colour(index: int) -> tuple[int, int, int]:
    return PALETTE[index % len(PALETTE)]


def label_colour(label: str, classes: Sequence[str]) -> tuple[int, int, int]:
    if label in classes:
        return class_colour(list(classes).index(label))
    return UNKNOWN_COLOUR


def _ink_on(colour) -> tuple[int, int, int]:
    """Black or white text, whichever reads better on `colour`."""
    b, g, r = colour
    return (20, 20, 20) if 0.114 * b + 0.587 * g + 0.299 * r > 150 else TEXT


@dataclass(frozen=True)
class _Scale:
    """Sizes in pixels for one frame size; 1.0 at 640x480."""

    s: float

    @classmethod
    def of(cls, shape) -> "_Scale":
        h, w = shape[:2]
        return cls(max(0.5, min(w / 640.0, h / 480.0)))

    def px(self, v: float) -> int:
        return max(1, round(v * self.s))

    @property
    def small(self) -> int:  # cap height of the HUD lines
        return max(7, self.px(11))

    @property
    def line(self) -> int:  # height of one HUD line, including spacing
        return round(self.small * 1.9)

    @property
    def margin(self) -> int:
        return self.px(8)


def _darken(img: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> None:
    """A semi-transparent black panel: scale the pixels underneath (cheaper than a blend)."""
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(img.shape[1], x1), min(img.shape[0], y1)
    if x0 < x1 and y0 < y1:
        img[y0:y1, x0:x1] = cv2.convertScaleAbs(img[y0:y1, x0:x1], alpha=PANEL_DARKEN)


def _top_height(sc: _Scale, hud: Hud) -> int:
    return sc.line * (2 if hud.saved_counts else 1)


def _bottom_height(sc: _Scale) -> int:
    # Room for the status line is kept even when there is none, so the bars do not jump.
    return sc.line * 2


def bar_tracks(shape, classes: Sequence[str], font: Optional[str] = None) -> list[Box]:
    """Where the confidence bars go for a frame of `shape`: one (x, y, w, h) per class.

    Rows shrink to share the height between the top and bottom strips, so 20
    classes fit on a 320x240 frame. The class names are drawn left of the
    tracks (a column as wide as the longest name, up to 40% of the panel), the
    percentages right of them.
    """
    return list(_bar_tracks(tuple(shape[:2]), tuple(classes), font))


@lru_cache(maxsize=16)
def _bar_tracks(shape: tuple[int, int], classes: tuple[str, ...], font: Optional[str]) -> tuple[Box, ...]:
    """The layout of `bar_tracks`, cached: it only changes with the frame size or classes."""
    h, w = shape[:2]
    n = max(1, len(classes))
    sc = _Scale.of(shape)
    top = sc.line * 2 + sc.margin  # below the tallest top strip (with saved counts)
    bottom = h - _bottom_height(sc) - sc.margin
    row = max(3, min(sc.px(24), (bottom - top) // n))
    panel_w = min(w - 2 * sc.margin, max(sc.px(280), round(w * 0.36)))
    px = _row_px(row)
    name_w = min(round(panel_w * 0.4), widest(classes, px, True, font)) + sc.px(8)
    pct_w = text_width("100%", px, True) + sc.px(8)
    x = sc.margin + sc.px(6) + name_w
    bar_w = max(4, panel_w - name_w - pct_w - sc.px(12))
    bar_h = max(2, round(row * 0.6))
    y0 = bottom - row * n
    return tuple((x, y0 + i * row + (row - bar_h) // 2, bar_w, bar_h) for i in range(n))


def _row_px(row: int) -> int:
    return max(4, round(row * 0.5))


def _draw_bars(img, pred: Prediction, classes: Sequence[str], sc: _Scale, font) -> None:
    tracks = _bar_tracks(img.shape[:2], tuple(classes), font)
    row = tracks[1][1] - tracks[0][1] if len(tracks) > 1 else sc.px(24)
    px = _row_px(row)
    x, y_first, bar_w, bar_h = tracks[0]
    name_x = sc.margin + sc.px(6)
    name_room = x - name_x - sc.px(8)
    panel_y0 = y_first - (row - bar_h) // 2 - sc.px(6)
    panel_y1 = tracks[-1][1] + bar_h + (row - bar_h) // 2 + sc.px(6)
    panel_x1 = x + bar_w + text_width("100%", px, True) + sc.px(14)
    _darken(img, sc.margin, panel_y0, panel_x1, panel_y1)
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
        put_text(img, _fit(name, px, name_room, is_winner, font), name_x, base, px, ink,
                 bold=is_winner, font=font)
        put_text(img, f"{p * 100:.0f}%", tx + tw + sc.px(6), base, px, ink, bold=is_winner)


@lru_cache(maxsize=256)
def _fit(text: str, px: int, room: int, bold: bool, font) -> str:
    """`text`, shortened with an ellipsis (ASCII "..") until it fits `room` pixels."""
    if text_width(text, px, bold, font) <= room:
        return text
    while len(text) > 1 and text_width(text + "..", px, bold, font) > room:
        text = text[:-1]
    return text + ".."


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


def _draw_region(img, pred: Prediction, classes, sc: _Scale, top: int, font) -> None:
    colour = label_colour(pred.label, classes)
    x, y, w, h = pred.region.box
    thickness = sc.px(3)
    if pred.region.source == "center":
        _dashed_rect(img, pred.region.box, colour, thickness, sc.px(14))
    else:
        cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), colour, thickness)
    # Large type, but never wider than a small detected box allows.
    px = max(sc.small, min(sc.px(30), round(w / 7)))
    text = pred.label if pred.label == UNKNOWN else f"{pred.label} {pred.confidence * 100:.0f}%"
    pad = max(2, px // 3)
    tw = text_width(text, px, True, font)
    cx = min(max(0, x), img.shape[1] - tw - 2 * pad)
    cy = max(y, top) + thickness  # under the top strip when the box starts at the frame top
    cy = min(cy, img.shape[0] - px - 2 * pad)
    cv2.rectangle(img, (cx, cy), (cx + tw + 2 * pad, cy + px + 2 * pad), colour, -1)
    put_text(img, text, cx + pad, cy + pad + px, px, _ink_on(colour), bold=True, font=font)
    if pred.region.source == "center":
        # Says that no face was found (or centre mode is on): the whole middle is classified.
        tag, tag_px = "centre crop", sc.small
        ty0 = cy + px + 2 * pad
        tag_w = text_width(tag, tag_px)
        _darken(img, cx, ty0, cx + tag_w + 2 * pad, ty0 + tag_px + 2 * pad)
        put_text(img, tag, cx + pad, ty0 + pad + tag_px, tag_px, colour)


def _timing_text(hud: Hud) -> str:
    parts = [f"{hud.fps:.0f} FPS"]
    if hud.timing_ms:
        parts.append("  ".join(f"{k} {v:.1f}" for k, v in hud.timing_ms.items()) + " ms")
    parts.append("crop " + ("centre" if hud.crop_mode == "center" else "detect"))
    return "   ".join(parts)


def _fit_px(text: str, px: int, room: int, font=None) -> int:
    """The cap height at which `text` fits `room` pixels: `px` or smaller, never below 4."""
    return max(4, min(px, px * room // max(1, text_width(text, px, font=font))))


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
        counts = "saved  " + "   ".join(f"{k} {v}" for k, v in hud.saved_counts.items())
        put_text(img, counts, sc.margin, base + sc.line,
                 _fit_px(counts, sc.small, W - 2 * sc.margin, font), DIM_TEXT, font=font)


def _draw_bottom(img, hud: Hud, sc: _Scale, font) -> None:
    H, W = img.shape[:2]
    y0 = H - _bottom_height(sc)
    status_y = y0 + sc.line // 2 + sc.small // 2
    if hud.status:
        _darken(img, 0, y0, W, H)
        put_text(img, hud.status, sc.margin, status_y, sc.small, STATUS_COLOUR, font=font)
    else:
        _darken(img, 0, H - sc.line, W, H)
    # The hint shrinks rather than loses its last keys on narrow frames.
    put_text(img, HINT, sc.margin, status_y + sc.line, _fit_px(HINT, sc.small, W - 2 * sc.margin),
             DIM_TEXT)


def _draw_toast(img, toast: str, sc: _Scale, font) -> None:
    H, W = img.shape[:2]
    px = max(sc.small, sc.px(16))
    pad = sc.px(10)
    toast = _fit(toast, px, W - 2 * pad - 2 * sc.margin, True, font)
    tw = text_width(toast, px, True, font)
    x0 = (W - tw) // 2 - pad
    y0 = round(H * 0.22)
    cv2.rectangle(img, (x0, y0), (x0 + tw + 2 * pad, y0 + px + 2 * pad), TOAST_COLOUR, -1)
    put_text(img, toast, x0 + pad, y0 + pad + px, px, TEXT, bold=True, font=font)


def _draw_help(img, classes: Sequence[str], sc: _Scale, font) -> None:
    H, W = img.shape[:2]
    px = max(sc.small, sc.px(13))
    line = round(px * 1.9)
    rows = list(HELP) + [(str(i + 1), name) for i, name in enumerate(classes[:9])]
    key_w = widest([k for k, _ in rows], px, True) + sc.px(16)
    text_w = widest([v for _, v in rows], px, False, font)
    pad = sc.px(16)
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
         hud: Hud, font: Optional[str] = None) -> np.ndarray:
    """Return a new BGR uint8 frame with the predictions and HUD drawn; `frame` is not touched.

    `font` is a TrueType/OpenType file for text Hershey cannot draw (non-ASCII);
    None searches the system's fonts.
    """
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be BGR uint8 [H, W, 3], got {frame.dtype} {frame.shape}")
    classes = tuple(classes)
    img = frame.copy()
    sc = _Scale.of(img.shape)
    top = _top_height(sc, hud)
    # Smaller regions last, so a small face inside a big box keeps its label visible.
    ordered = sorted(predictions, key=lambda p: p.region.box[2] * p.region.box[3], reverse=True)
    for pred in ordered:
        _draw_region(img, pred, classes, sc, top, font)
    _draw_top(img, hud, sc, font)
    _draw_bottom(img, hud, sc, font)
    if hud.show_bars and ordered and len(ordered[0].probs) == len(classes):
        _draw_bars(img, ordered[0], classes, sc, font)
    if hud.toast:
        _draw_toast(img, hud.toast, sc, font)
    if hud.show_help:
        _draw_help(img, classes, sc, font)
    return img
