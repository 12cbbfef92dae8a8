"""Text on BGR frames at a given cap height, for any script.

OpenCV's Hershey fonts are ASCII-only, so ASCII is drawn with `cv2.putText` and
anything else ("나비", "Chloé") through Pillow with a TrueType font that has the
glyphs. Measured at 640x480: thin anti-aliased putText takes 5-90 us a string,
but from stroke 2 up (bold, large type) 300+ us, and Pillow milliseconds. So
thick or non-ASCII text is rendered once and cached as weights for
`cv2.blendLinear` keyed by (text, size, boldness, font, colour): a name costs
one small blend per frame. Thin ASCII goes straight to putText (caching it is
no faster), as does text marked `volatile` (it changes every frame, and would
only churn the cache). Sizes are cap heights in pixels (the height of "H"),
the same for both paths.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from .errors import UserError

Colour = tuple[int, int, int]  # BGR

_CV_FONT = cv2.FONT_HERSHEY_SIMPLEX
_CV_CAP = cv2.getTextSize("H", _CV_FONT, 1.0, 1)[0][1]
_TT_CAP = 0.72  # cap height / em size of typical sans fonts (DejaVu 0.73, Nanum 0.70)

# Preferred fonts, first match wins when it has every glyph of the text: clean Latin
# sans first, then fonts that cover Korean/CJK (the bundled cats have Korean names).
_PREFERRED = (
    "DejaVuSans.ttf", "NotoSans-Regular.ttf", "Arial.ttf", "arial.ttf", "segoeui.ttf",
    "NotoSansCJK-Regular.ttc", "NotoSansCJKkr-Regular.otf", "NotoSansKR-Regular.ttf",
    "NotoSansKR-Regular.otf", "NanumGothic.ttf", "NanumBarunGothic.ttf", "malgun.ttf",
    "AppleSDGothicNeo.ttc", "AppleGothic.ttf", "unifont.ttf", "unifont.otf",
)
_FONT_SUFFIXES = (".ttf", ".otf", ".ttc")
# Fonts that map every code point to a placeholder glyph: they "cover" any text, uselessly.
_PLACEHOLDER_FONTS = ("lastresort",)
_MAX_FONTS_CHECKED = 64  # bounds the one-off glyph search on machines with thousands of fonts


def _font_dirs() -> list[Path]:
    dirs = [Path("/usr/share/fonts"), Path("/usr/local/share/fonts"),
            Path.home() / ".local/share/fonts", Path.home() / ".fonts",
            Path("/Library/Fonts"), Path("/System/Library/Fonts"), Path.home() / "Library/Fonts"]
    if sys.platform == "win32":
        dirs.append(Path(os.environ.get("WINDIR", "C:/Windows")) / "Fonts")
    # matplotlib, where installed (the train extra), ships DejaVu Sans.
    spec = importlib.util.find_spec("matplotlib")
    if spec and spec.submodule_search_locations:
        dirs.append(Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf")
    return dirs


@lru_cache(maxsize=1)
def system_fonts() -> tuple[Path, ...]:
    """Font files found in the usual places, preferred names first."""
    found: dict[str, Path] = {}
    for d in _font_dirs():
        if not d.is_dir():
            continue
        for root, _, files in os.walk(d):
            for f in files:
                if f.lower().endswith(_FONT_SUFFIXES) and not f.lower().startswith(_PLACEHOLDER_FONTS):
                    found.setdefault(f, Path(root) / f)
    rank = {name: i for i, name in enumerate(_PREFERRED)}
    return tuple(found[n] for n in sorted(found, key=lambda n: (rank.get(n, len(rank)), n)))


# A private-use code point that no text font maps: it renders as the font's .notdef glyph.
_ABSENT = "\U0010FFFD"


def _glyph(font, char: str) -> tuple:
    mask = font.getmask(char)
    return mask.size, bytes(mask)


@lru_cache(maxsize=4096)
def _has_glyph(path: Path, code: int) -> bool:
    """Whether the font at `path` draws `code` with a glyph of its own, not its .notdef box.

    Compared as rendered by Pillow, so no font-parsing library is needed in the base install.
    """
    try:
        font = _pil_font(path, 24)
    except OSError:  # an unreadable font file is simply not a candidate
        return False
    return _glyph(font, chr(code)) != _glyph(font, _ABSENT)


@lru_cache(maxsize=256)
def font_for(text: str, configured: str | None = None) -> Path | None:
    """The first font (the configured one, then the system's) that has every glyph of `text`.

    Falls back to the first font at all (missing glyphs show as boxes), or None,
    which means Pillow's built-in font.
    """
    candidates: list[Path] = []
    if configured and Path(configured).expanduser().is_file():
        candidates.append(Path(configured).expanduser())
    candidates += system_fonts()[:_MAX_FONTS_CHECKED]
    needed = {ord(c) for c in text if not c.isspace()}
    for path in candidates:
        if all(_has_glyph(path, code) for code in needed):
            return path
    return candidates[0] if candidates else None


def check_font(configured: str | None) -> None:
    """UserError unless `configured` (overlay.font; `~` is the home folder) is a font file Pillow reads: a
    wrong path was passed over in silence, and the names it was set for still showed as boxes."""
    if configured is None:
        return
    path = Path(configured).expanduser()
    try:
        _pil_font(path, 24)
    except OSError:
        # os.path's test, not Path's, which raises OSError for a name over 255 bytes
        what = "not a font file Pillow can read" if os.path.exists(path) else "no such file"
        raise UserError(f"config key 'overlay.font' = '{configured}': {what} (give a TTF/OTF file, "
                        f"or null to search the system's fonts)") from None


@lru_cache(maxsize=64)
def _pil_font(path: Path | None, size: int):
    from PIL import ImageFont

    if path is None:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(str(path), size=size)


@lru_cache(maxsize=1024)
def _mask(text: str, px: int, bold: bool, configured: str | None) -> tuple[np.ndarray, int, int]:
    """Rendered `text` as float32 alpha [h, w], with its left offset and ascent from the baseline."""
    if text.isascii():
        scale, thickness = _cv_params(px, bold)
        (w, h), descent = cv2.getTextSize(text, _CV_FONT, scale, thickness)
        canvas = np.zeros((h + descent + 2 * thickness, w + 2 * thickness), np.uint8)
        cv2.putText(canvas, text, (thickness, h + thickness), _CV_FONT, scale, 255, thickness,
                    cv2.LINE_AA)
        return canvas.astype(np.float32) / 255.0, -thickness, h + thickness

    from PIL import Image, ImageDraw

    font = _pil_font(font_for(text, configured), max(4, round(px / _TT_CAP)))
    stroke = max(1, round(px / 14)) if bold else 0
    left, top, right, bottom = font.getbbox(text, anchor="ls", stroke_width=stroke)
    w, h = max(1, right - left), max(1, bottom - top)
    img = Image.new("L", (w, h), 0)
    ImageDraw.Draw(img).text((-left, -top), text, font=font, fill=255, anchor="ls",
                             stroke_width=stroke, stroke_fill=255)
    return np.asarray(img, dtype=np.float32) / 255.0, left, -top


@lru_cache(maxsize=1024)
def _patch(text: str, px: int, bold: bool, configured: str | None, colour: Colour):
    """blendLinear's inputs for `text` in `colour`: (weights of the picture, of the text, solid colour)."""
    alpha, left, ascent = _mask(text, px, bold, configured)
    solid = np.empty((*alpha.shape, 3), np.uint8)
    solid[:] = colour
    return 1.0 - alpha, alpha, solid, left, ascent


def _cv_params(px: int, bold: bool) -> tuple[float, int]:
    # Below 10 px a second stroke fills the letters' counters: small bold text stays thin.
    thickness = max(1, round(px / 12)) + (1 if bold and px >= 10 else 0)
    return px / _CV_CAP, thickness


def text_width(text: str, px: int, bold: bool = False, font: str | None = None) -> int:
    """The width in pixels of `text` as put_text draws it at cap height `px`."""
    if text.isascii():
        scale, thickness = _cv_params(px, bold)
        return cv2.getTextSize(text, _CV_FONT, scale, thickness)[0][0]
    alpha, left, _ = _mask(text, px, bold, font)
    return left + alpha.shape[1]


def widest(texts: Sequence[str], px: int, bold: bool = False, font: str | None = None) -> int:
    """The largest text_width of `texts`; 0 for none."""
    return max((text_width(t, px, bold, font) for t in texts), default=0)


def put_text(img: np.ndarray, text: str, x: int, y: int, px: int, colour: Colour,
             bold: bool = False, font: str | None = None, volatile: bool = False) -> None:
    """Draw `text` in place with its baseline starting at (x, y); clipped at the image border.

    `volatile`: the text changes every frame (an FPS figure), so it is not cached.
    """
    if not text:
        return
    scale, thickness = _cv_params(px, bold)
    if text.isascii() and (thickness == 1 or volatile):
        cv2.putText(img, text, (int(x), int(y)), _CV_FONT, scale, colour, thickness, cv2.LINE_AA)
        return
    keep, ink, solid, left, ascent = _patch(text, px, bold, font, tuple(int(c) for c in colour))
    x0, y0 = int(x) + left, int(y) - ascent
    h, w = ink.shape
    # Clip the patch to the image.
    ix0, iy0 = max(0, x0), max(0, y0)
    ix1, iy1 = min(img.shape[1], x0 + w), min(img.shape[0], y0 + h)
    if ix0 >= ix1 or iy0 >= iy1:
        return
    if (ix1 - ix0, iy1 - iy0) != (w, h):
        part = np.s_[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
        keep, ink, solid = (np.ascontiguousarray(a[part]) for a in (keep, ink, solid))
    roi = img[iy0:iy1, ix0:ix1]
    roi[:] = cv2.blendLinear(roi, solid, keep, ink)


@lru_cache(maxsize=256)  # drawn every frame, for each class's bar: the same few names and rooms
def fit(text: str, px: int, room: int, bold: bool = False, font: str | None = None, suffix: str = "") -> str:
    """`text` + `suffix`, `text` shortened with an ellipsis (ASCII "..") until the whole fits `room`
    pixels: a suffix such as a confidence (" 80%") is kept whole."""
    if text_width(text + suffix, px, bold, font) <= room:
        return text + suffix
    while len(text) > 1 and text_width(text + ".." + suffix, px, bold, font) > room:
        text = text[:-1]
    return text.rstrip() + ".." + suffix  # "Sir Reginald..", not "Sir Reginald .."
