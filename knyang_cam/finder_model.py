"""The cat finder's model directory (`models/finder/`): its files, finder.json, and how the
network's score maps become boxes. Shared by the app (knyang_cam.cat_finder runs the network)
and the trainer (train/finder.py writes the directory and scores it with the same decoding).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from . import bundled
from .errors import UserError
from .results import intersection

TFLITE_FILE = "finder.tflite"
META_FILE = "finder.json"
# The second look at a found box (knyang_cam/cat_species.py): a cat, or a dog? Optional: a finder folder
# without it finds as before.
SPECIES_FILE = "species.tflite"
SPECIES_META = "species.json"
CELL = 16  # input pixels per cell of the maps: the backbone is cut at stride 16
# The score map is upsampled this many times before thresholding, so a box edge can fall
# between two cells: a box a quarter of a cell off costs little IoU, a whole cell costs much.
UPSAMPLE = 4
# The "on a cat" map was trained on the share of each cell a cat covers, so where it crosses one
# half is where the cat's outline runs: boxes take that extent, whatever threshold made the blob.
EDGE = 0.5
# Two peaks of the centre map are two cats when the map dips between them below this share of the lower peak.
# Close to the camera a cat's head and body are two bumps with a shallow dip between them, so a blob of at
# least NEAR_CAT of the frame height needs the deep dip (DIP); a shorter blob is cats at a distance, whose one
# bump has no second top, and a shallow dip (DIP_FAR) splits two cats that touch. bench/find_cats.py, seeds
# 13-17, DIP_FAR 0.5 -> 0.7: one cat off centre 0.885 -> 0.893 (no seed lower), two cats 0.853 -> 0.855, three
# 0.756 -> 0.764, wrong names 0.0264 -> 0.0265 per frame; Oxford cats (--oxford-cats, seed 13) found off centre
# 0.906 -> 0.913, three cats 0.604 -> 0.629, boxes on no cat 0.040 -> 0.034 per frame; bench/app_speed.py's
# centred clip unchanged (0.9511). DIP_FAR 0.7 for every blob split cats filling the picture (that clip 0.899),
# and for blobs under 0.75 of the height too (0.936).
DIP, DIP_FAR, NEAR_CAT = 0.5, 0.7, 0.6
# Cats at a distance that touch can make one coarse blob with one centre peak (the smaller cat's bump under
# `centre_peak`), where the finer pass sees each apart; a coarse box shorter than NEAR_CAT of the frame is
# replaced by the fine boxes inside it (SPLIT_INSIDE of each one's area) when two or more are each at least
# SPLIT_TALL of its height (a cat each, not the patches of one calico cat), and only while the cats on the coarse
# map cover less than SPLIT_COVER of the frame (a cat close to the camera, which the coarse pass breaks into
# parts and the fine one into more, covers 47% or more). bench/find_cats.py, seeds 13-17: two cats 0.855 ->
# 0.865, three 0.764 -> 0.774, one cat off centre 0.893 -> 0.894, wrong names 0.0265 per frame both (on a cat of
# another name 0.0189 -> 0.0198, with no cat under the box 0.0076 -> 0.0068); bench/app_speed.py's centred clip
# unchanged (0.9511, wrong names 0.0107). Parts half its height: off centre 0.897 but wrong names 0.0291; any
# height 0.902 and 0.0295 (a calico cat's patches read as other cats); without the cover rule that clip fell to
# 0.948; one fine box in place of the coarse one (a tighter box) took small cats 0.710 -> 0.754 and wrong names to
# 0.0357.
SPLIT_INSIDE, SPLIT_TALL, SPLIT_COVER = 0.7, 0.65, 0.45


class FinderError(UserError):
    """A missing or broken cat finder (models/finder/); its one line names the rebuild command (exit 2)."""


@dataclass(frozen=True)
class FinderMeta:
    """finder.json: what the network takes and how its score map becomes boxes."""

    input_size: tuple[int, int]  # (height, width) the frame is resized to
    threshold: float  # a cell scoring at least this is on a cat
    peak: float  # a blob is a cat only when its best cell scores at least this
    min_cells: float  # a blob smaller than this many input cells is noise
    centre_peak: float  # a centre-map peak at least this high is a cat of its own
    fine_input_size: tuple[int, int] | None = None  # (height, width) of a second, finer pass; None: one pass
    fine_below: float = 0.4  # the finer pass adds cats shorter than this share of the frame height
    one_cat_cover: float | None = 0.6  # blobs covering this share of the frame or more are one cat; None: never

    @classmethod
    def read(cls, path: Path) -> FinderMeta:
        """Parse finder.json at `path`; FinderError naming the file and the rebuild command when missing or invalid."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise TypeError(f"a JSON object is expected, got {type(data).__name__}")
            fine, one = data.get("fine_input_size"), data.get("one_cat_cover", cls.one_cat_cover)
            return cls(_size(data["input_size"]), _finite(data["threshold"]), _finite(data["peak"]),
                       _finite(data["min_cells"]), _finite(data["centre_peak"]),
                       None if fine is None else _size(fine),
                       _share(data.get("fine_below", cls.fine_below), "fine_below", "of the frame height"),
                       None if one is None else _share(one, "one_cat_cover", "of the frame"))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise FinderError(f"cat finder metadata {path} is missing or invalid ({e}); rebuild it with "
                              f"{bundled.trainer_command('finder')}") from None


def _size(value) -> tuple[int, int]:
    """(height, width) the network can take: whole cells of CELL pixels, at most 1024 a side."""
    size = tuple(int(v) for v in value)
    if len(size) != 2 or not all(0 < v <= 1024 and v % CELL == 0 for v in size):
        raise ValueError(f"an input size is [height, width], each a multiple of {CELL} up to 1024, not {list(value)}")
    return size


def _finite(value) -> float:
    number = float(value)
    if not math.isfinite(number):  # NaN compares false with every score: no cat would ever be found
        raise ValueError(f"a finite number is expected, not {value}")
    return number


def _share(value, key: str, of: str) -> float:
    share = float(value)
    if not 0.0 < share <= 1.0:
        raise ValueError(f"{key} is a share {of} in (0, 1], not {value}")
    return share


@dataclass(frozen=True)
class Blob:
    """One cat on the finder's input: box (x, y, w, h) in frame pixels and its best cell score."""

    box: tuple[int, int, int, int]
    score: float


def boxes_from_scores(maps: np.ndarray, frame_size: tuple[int, int], threshold: float, peak: float,
                      min_cells: float, centre_peak: float = 0.3) -> list[Blob]:
    """The cats of [gh, gw, 2] maps ("on a cat", "a cat's centre") as boxes in a frame of
    `frame_size` (width, height), largest and surest first.

    Two thresholds on the first map, as in edge hysteresis: cells above `threshold` make a
    blob's extent, and a blob counts only when some cell of it reaches `peak` (a cat scores high
    somewhere; a rug's texture or a small dog scores middling over a few cells). Two cats side
    by side make one blob: the second map has a peak at each cat's centre, and a blob with
    several peaks is shared between them, each pixel going to the nearest peak.
    """
    gh, gw = maps.shape[:2]
    width, height = frame_size
    size = (gw * UPSAMPLE, gh * UPSAMPLE)
    cover = cv2.resize(np.ascontiguousarray(maps[..., 0], np.float32), size, interpolation=cv2.INTER_LINEAR)
    centre = cv2.resize(np.ascontiguousarray(maps[..., 1], np.float32), size, interpolation=cv2.INTER_LINEAR)
    n, labels = cv2.connectedComponents((cover >= threshold).astype(np.uint8), connectivity=4)
    peaks = _peaks(centre, centre_peak)
    sx, sy = width / size[0], height / size[1]
    blobs = []
    for i in range(1, n):
        inside = labels == i
        ys, xs = np.nonzero(inside)
        if len(xs) < min_cells * UPSAMPLE * UPSAMPLE:
            continue
        near = (ys.max() - ys.min() + 1) >= NEAR_CAT * size[1]
        mine = _apart(centre, [(px, py) for px, py in peaks if inside[py, px]], DIP if near else DIP_FAR)
        if len(mine) < 2:
            parts = [(xs, ys)]
        else:
            d = [(xs - px) ** 2 + (ys - py) ** 2 for px, py in mine]
            nearest = np.argmin(np.stack(d), axis=0)
            parts = [(xs[nearest == k], ys[nearest == k]) for k in range(len(mine))]
        for pxs, pys in parts:
            if len(pxs) < min_cells * UPSAMPLE * UPSAMPLE:
                continue
            best = float(cover[pys, pxs].max())
            if best < peak:
                continue
            edge = cover[pys, pxs] >= EDGE
            if edge.any():
                pxs, pys = pxs[edge], pys[edge]
            x0, y0, x1, y1 = pxs.min(), pys.min(), pxs.max() + 1, pys.max() + 1
            box = (int(round(x0 * sx)), int(round(y0 * sy)), max(1, int(round((x1 - x0) * sx))),
                   max(1, int(round((y1 - y0) * sy))))
            blobs.append(Blob(box, best))
    return sorted(blobs, key=lambda b: -b.box[2] * b.box[3] * b.score)


def one_cat_filling(blobs: list[Blob], cover: float, above: float | None) -> list[Blob]:
    """`blobs` as one, the box over them all, when the map's cells on a cat (`cover`, a share of the frame)
    reach `above`: a cat filling the picture, which the finder sees in parts.

    Close to the camera a cat's head and body are far apart on the map, with a gap of white fur or a
    centre peak each between them, so one cat came out as two boxes, and the part a box showed alone
    read as another cat (bench/app_speed.py's centred clip: two or more regions in a quarter of the
    frames, regions naming a cat that is not there 0.033 per frame; 0.011 with this at 0.6). The clip's
    split cats cover 47% of the frame or more (95% of those frames); two or three cats of
    bench/find_cats.py 43% or less (95%), but at 0.5 a few zoomed-in pairs were joined (two cats named
    right 0.826 -> 0.813, seeds 13-15); at 0.6 none were.
    """
    if above is None or len(blobs) < 2 or cover < above:
        return blobs
    x0, y0 = min(b.box[0] for b in blobs), min(b.box[1] for b in blobs)
    x1, y1 = max(b.box[0] + b.box[2] for b in blobs), max(b.box[1] + b.box[3] for b in blobs)
    return [Blob((x0, y0, x1 - x0, y1 - y0), max(b.score for b in blobs))]


def split_by_fine(coarse: list[Blob], fine: list[Blob], frame_height: int, cover: float) -> list[Blob]:
    """`coarse`, each box over touching cats at a distance in place of the cats the finer pass finds in it
    (SPLIT_INSIDE, SPLIT_TALL), while the coarse map's cats cover less than SPLIT_COVER of the frame."""
    if cover >= SPLIT_COVER:
        return coarse
    out: list[Blob] = []
    for c in coarse:
        parts = [f for f in fine if intersection(f.box, c.box) >= SPLIT_INSIDE * f.box[2] * f.box[3]
                 and f.box[3] >= SPLIT_TALL * c.box[3] and f not in out]
        out += parts if c.box[3] < NEAR_CAT * frame_height and len(parts) >= 2 else [c]
    return out


def with_small_cats(coarse: list[Blob], fine: list[Blob], frame_height: int, below: float,
                    overlap: float = 0.3) -> list[Blob]:
    """The coarse pass's cats, and the finer pass's small cats that no coarse box covers.

    A cat a quarter of the frame high spans three or four cells of the coarse input, too few to
    be sure of, and two or three cats side by side merge there; a finer input finds them, but
    cuts a cat filling the frame into pieces (a head, a body). So the coarse pass keeps every
    cat it finds, and the fine pass only adds cats shorter than `below` of the frame height
    whose box shares no more than `overlap` of either box's area with a coarse box.
    """
    def shared(a, b) -> float:
        return intersection(a, b) / max(min(a[2] * a[3], b[2] * b[3]), 1)

    added = [b for b in fine if b.box[3] < below * frame_height
             and all(shared(b.box, c.box) <= overlap for c in coarse)]
    return sorted(coarse + added, key=lambda b: -b.box[2] * b.box[3] * b.score)


def _apart(centre: np.ndarray, peaks: list[tuple[int, int]], dip: float) -> list[tuple[int, int]]:
    """The peaks that stand for cats of their own, highest first.

    Two cats' centres are a cat's width apart, and the centre map falls low between them (the
    bumps it learnt spread a fifth of a cat); a big cat's broad bump can have two tops with no
    valley between. A peak is kept only when the map dips below `dip` times the lower of it and
    every peak kept before it, along the straight line between them.
    """
    kept: list[tuple[int, int]] = []
    for p in sorted(peaks, key=lambda q: -centre[q[1], q[0]]):
        if all(_valley(centre, p, q, dip) for q in kept):
            kept.append(p)
    return kept


def _valley(centre: np.ndarray, a: tuple[int, int], b: tuple[int, int], dip: float) -> bool:
    n = max(abs(a[0] - b[0]), abs(a[1] - b[1])) + 1
    xs = np.linspace(a[0], b[0], n).round().astype(int)
    ys = np.linspace(a[1], b[1], n).round().astype(int)
    return float(centre[ys, xs].min()) < dip * min(centre[a[1], a[0]], centre[b[1], b[0]])


def _peaks(centre: np.ndarray, floor: float) -> list[tuple[int, int]]:
    """Local maxima of the upsampled centre map (at least `floor`, one cell apart), as (x, y)."""
    k = 2 * UPSAMPLE + 1
    top = (centre >= cv2.dilate(centre, np.ones((k, k), np.uint8))) & (centre >= floor)
    # A flat top is several equal pixels: one peak at its centroid.
    n, _, _, centroids = cv2.connectedComponentsWithStats(top.astype(np.uint8), connectivity=8)
    return [(int(round(cx)), int(round(cy))) for cx, cy in centroids[1:]]
