"""Where to look in a frame: the centre square, every cat the cat finder sees, or cat faces.

A region finder is a callable `finder(frame_bgr) -> list[Region]` (with `reset()` for a video
cut); `zoomed` gives each region its views (the square and closer squares about its centre),
`views_of` picks the ones to classify this frame (all of a new region's, one in turn of a tracked
one's), `crops` turns them into one classifier batch, and `surest` keeps each region's surest view.

`--crop detect` uses the cat finder (knyang_cam/cat_finder.py, `regions.detector: cats`), not
OpenCV's frontal cat-face cascade (`regions.detector: faces`): on the scenes of
bench/find_cats.py the cascade found a face in few frames (cats seen from the side, from the
back, curled up or small have none it knows) and, with its fallback to the centre square,
named a cat where there was none; the finder sees whole cats in any pose down to a quarter of
the frame height, and nothing where there is no cat (the figures: models/finder/README.md).
Motion (background subtraction) was not measured: a sleeping cat does not move, and a panning
camera moves everything, so it could at best propose regions for the finder to check.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np

from .config import RegionsConfig
from .finder_model import Blob
from .results import UNKNOWN, Box, Prediction, Region, iou

CASCADE = "haarcascade_frontalcatface.xml"
# Of a grown face box, this share of the extra height goes above the face: ears and forehead.
UPWARD_SHARE = 0.65

Finder = Callable[[np.ndarray], list]


def center_region(width: int, height: int) -> Region:
    """The largest square centred in a `width` x `height` frame, as a "center" Region."""
    side = min(width, height)
    return Region(((width - side) // 2, (height - side) // 2, side, side), "center")


def center_finder(frame: np.ndarray) -> list[Region]:
    """The finder for `--crop center`: always one region, the frame's centred square."""
    return [center_region(frame.shape[1], frame.shape[0])]


def shrunk(frame: np.ndarray, scale: float) -> np.ndarray:
    """`frame` resized by `scale`, each side at least one pixel: a frame over 640 times wider than tall, scaled
    to a 320-pixel width, had no row left, which cv2.resize refuses (a traceback)."""
    h, w = frame.shape[:2]
    return cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def grow_box(box, expand: float, width: int, height: int,
             upward: float = UPWARD_SHARE) -> tuple[int, int, int, int]:
    """A square `expand` times the box's larger side, `upward` of the extra height above the box.

    The square is shifted back inside the frame before it is clipped, so it stays square
    (the classifier's input is square) whenever the frame is large enough.
    """
    x, y, w, h = box
    side = min(int(round(max(w, h) * expand)), width, height)
    cx = x + w / 2
    top = y - (side - h) * upward
    nx = int(round(min(max(cx - side / 2, 0), width - side)))
    ny = int(round(min(max(top, 0), height - side)))
    return nx, ny, side, side


class FaceFinder:
    """Cat faces on a downscaled grey frame, detected every `detect_every` calls.

    Boxes are held between detections, so the classifier sees every frame while the
    detector (tens of ms) runs on a fraction of them. No face: the centre square.
    """

    def __init__(self, cfg: RegionsConfig):
        self._cfg = cfg
        self._cascade = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE)
        if self._cascade.empty():
            raise RuntimeError(f"OpenCV's {CASCADE} did not load (needs opencv-python 4.x)")
        self._calls = 0
        self._held: list[Region] = []

    def detect(self, frame: np.ndarray) -> list[Region]:
        """Cat faces in `frame` (BGR) now, grown to squares, largest first, at most max_regions; [] when none."""
        height, width = frame.shape[:2]
        scale = min(1.0, self._cfg.detect_width / width)
        small = shrunk(frame, scale)
        grey = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
        faces = self._cascade.detectMultiScale(grey, scaleFactor=self._cfg.scale_step, minNeighbors=3,
                                               minSize=(self._cfg.min_face, self._cfg.min_face))
        faces = sorted((tuple(int(v / scale) for v in f) for f in faces), key=lambda b: -b[2] * b[3])
        return [Region(grow_box(f, self._cfg.expand, width, height), "detect")
                for f in faces[:self._cfg.max_regions]]

    def reset(self) -> None:
        """Forget the held faces (a video cut)."""
        self._calls, self._held = 0, []

    def __call__(self, frame: np.ndarray) -> list[Region]:
        if self._calls % self._cfg.detect_every == 0:
            self._held = self.detect(frame)
        self._calls += 1
        return self._held or center_finder(frame)


class BoxTracker:
    """Moves boxes with the picture between two detections (pyramidal Lucas-Kanade optical flow).

    A grid of points in each box is followed from the previous frame (grey, downscaled); the box
    moves by their median shift and scales by the median change of their spread. Under a
    millisecond a frame, against several for a detection, so the finder can run every few frames
    while each box keeps up with a walking cat (and with a panning camera).
    """

    GRID = 5  # points per side of a box
    WIDTH = 320  # the frame is followed at this width

    def __init__(self):
        self._grey: np.ndarray | None = None
        self._scale = 1.0

    def _small(self, frame: np.ndarray) -> np.ndarray:
        self._scale = min(1.0, self.WIDTH / frame.shape[1])
        small = shrunk(frame, self._scale)
        return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)

    def start(self, frame: np.ndarray) -> None:
        """Remember `frame` as the one the next `follow` moves from."""
        self._grey = self._small(frame)

    def follow(self, frame: np.ndarray, boxes: Sequence[Box]) -> list[Box]:
        """`boxes` (on the last frame) moved onto `frame`; a box whose points are lost stays put."""
        grey = self._small(frame)
        prev, self._grey = self._grey, grey
        if prev is None or not boxes or prev.shape != grey.shape:
            return list(boxes)
        s, g = self._scale, self.GRID
        steps = (np.arange(g, dtype=np.float32) + 0.5) / g
        points = np.concatenate([
            np.stack(np.meshgrid(x * s + steps * w * s, y * s + steps * h * s), -1).reshape(-1, 2)
            for x, y, w, h in boxes]).astype(np.float32)
        moved, ok, _ = cv2.calcOpticalFlowPyrLK(prev, grey, points[:, None], None, winSize=(15, 15), maxLevel=2)
        moved, ok = moved[:, 0], ok[:, 0].astype(bool)
        out = []
        for i, (x, y, w, h) in enumerate(boxes):
            sl = slice(i * g * g, (i + 1) * g * g)
            a, b = points[sl][ok[sl]], moved[sl][ok[sl]]
            if len(a) < g:
                out.append((x, y, w, h))
                continue
            shift = np.median(b - a, axis=0) / s
            spread_a = np.linalg.norm(a - a.mean(0), axis=1)
            spread_b = np.linalg.norm(b - b.mean(0), axis=1)
            zoom = float(np.clip(np.median(spread_b) / max(np.median(spread_a), 1e-6), 0.8, 1.25))
            cx, cy = x + w / 2 + shift[0], y + h / 2 + shift[1]
            nw, nh = max(1, int(round(w * zoom))), max(1, int(round(h * zoom)))
            out.append((int(round(cx - nw / 2)), int(round(cy - nh / 2)), nw, nh))
        return out


# A tracked box is looked at again (cat_species.SecondLook) at its first LOOKS detections, then its verdict
# stands. Looking at every detection cost the detect loop 15% (bench/app_speed.py, back to back: 151.0 FPS
# without the second look, 127.8 with it), the first 8 only 6% (158.6 against 149.8); boxes on a dog in
# bench/find_cats.py (seeds 13-17) 0.033 against 0.041 per frame, the 46 held-out dogs 78 frames of 1,380 both.
LOOKS = 8


class CatRegions:
    """Every cat the cat finder sees, found every `detect_every` frames and tracked in between.

    A found cat's box grows to a square (`expand_cat` times its longer side, centred: the whole
    cat, as in the photos the identity model learnt from) clipped into the frame. No cat, no
    region: an empty room gives `[]`, never the centre square. A new detection that overlaps a
    tracked box is averaged with it, so the crop does not jump at each detection and the
    smoother's IoU match keeps the cat's identity. With the finder's second look (`looks`), each
    region says whether its box's looks so far take it for a cat (`Region.cat_look`).
    """

    def __init__(self, cfg: RegionsConfig, finder=None, threads: int = 2, looks=None):
        from .cat_finder import FINDER_DIR, CatFinder
        from .cat_species import SecondLook

        self._cfg = cfg
        if finder is None:
            finder = CatFinder(threads=threads)
            looks = looks or SecondLook.of(FINDER_DIR, threads)
        self._finder = finder
        self._looks = looks  # the second look (cat_species.SecondLook), or None: every box is a cat
        self._tracker = BoxTracker()
        self._cats: list[Box] = []  # the cats' own boxes on the last frame
        self._scores: list[float] = []  # how sure the finder was of each, when it last found it
        self._evidence: list[tuple[float, int]] = []  # each box's looks so far: sum of logits, how many
        self._calls = 0

    def reset(self) -> None:
        """Forget the cats (a video cut): the next frame is searched afresh."""
        self._cats, self._scores, self._evidence, self._calls = [], [], [], 0

    def detect(self, frame: np.ndarray) -> list[Blob]:
        """The cats (finder Blobs: box and score) on `frame`, at most `max_regions`, largest and surest first."""
        return self._finder(frame)[:self._cfg.max_regions]

    def __call__(self, frame: np.ndarray) -> list[Region]:
        detecting = self._calls % self._cfg.detect_every == 0
        if detecting:
            found = self.detect(frame)
            self._tracker.start(frame)
            # A fresh detection overlapping a tracked box is averaged with it and carries on its looks.
            before = [_match(b.box, self._cats) for b in found]
            self._cats = [b.box if j is None else _average(b.box, self._cats[j]) for b, j in zip(found, before)]
            self._scores = [min(1.0, max(0.0, float(b.score))) for b in found]
        else:
            self._cats = self._tracker.follow(frame, self._cats)
        self._calls += 1
        height, width = frame.shape[:2]
        squares = [grow_box(b, self._cfg.expand_cat, width, height, upward=0.5) for b in self._cats]
        if detecting:
            self._evidence = self._look(frame, squares, [(0.0, 0) if j is None else self._evidence[j] for j in before])
        out: list[Region] = []
        for square, score, (total, n) in zip(squares, self._scores, self._evidence):
            cat_look = self._looks is None or not n or total / n >= self._looks.cat_below
            # Two boxes on one cat (parts of it found apart) would name it twice: the larger stays.
            if all(iou(square, kept.box) < 0.5 for kept in out):
                out.append(Region(square, "detect", score, cat_look))
        return out

    def _look(self, frame: np.ndarray, squares: list[Box],
              before: list[tuple[float, int]]) -> list[tuple[float, int]]:
        """Each box's looks with this frame's added (all boxes in one call), up to LOOKS a box; unchanged
        without a second look.

        Summed over the detections of a tracked box: one look at a dog passes for a cat now and then
        (4% of held-out Oxford dog crops, models/finder/species.json), the mean of several seldom.
        """
        todo = [i for i, (_, n) in enumerate(before) if n < LOOKS]
        if self._looks is None or not todo:
            return before
        logits = self._looks(crops(frame, [Region(squares[i], "detect") for i in todo], self._looks.input_size))
        out = list(before)
        for i, v in zip(todo, logits):
            out[i] = (out[i][0] + float(v), out[i][1] + 1)
        return out


def _match(box: Box, tracked: Sequence[Box]) -> int | None:
    """The index of the tracked box a fresh detection overlaps most (IoU >= 0.5), else None."""
    best = max(range(len(tracked)), key=lambda i: iou(box, tracked[i]), default=None)
    return None if best is None or iou(box, tracked[best]) < 0.5 else best


def _average(a: Box, b: Box) -> Box:
    return tuple(int(round((u + v) / 2)) for u, v in zip(a, b))


def seen_as_cat(prediction: Prediction, sure: float, flat: float) -> bool:
    """Whether a region shows a cat: the finder was sure of one (score >= `sure`), or the classifier
    sees something of my cats in it (its probabilities at least `flat` from even).

    The finder, unsure, puts boxes on room clutter and dogs now and then (bench/find_cats.py's
    empty rooms and dogs: scores 0.91-0.96, against a median of 0.98-0.99 over cats); on those the
    gate often leaves the probabilities even to a hundredth, which no region named as one of my
    cats came near (its spread: 0.48 at the 1st percentile). A stranger cat with flat
    probabilities keeps its box (reading "unknown") when the finder is sure of it.
    """
    if prediction.region.score >= sure:
        return True
    p = prediction.probs
    return max(p) - min(p) >= flat


class SeenCats:
    """The predictions to show: those whose track was seen as a cat (`seen_as_cat`) in any frame so far.

    Once is enough: a stranger's box does not come and go with the finder's score from one
    detection to the next. Track ids are never reused (Smoother), so a forgotten track's entry
    only has to go, `forget_after` frames after it was last shown.
    """

    def __init__(self, sure: float, flat: float, forget_after: int):
        self.sure, self.flat, self.forget_after = sure, flat, forget_after
        self._last: dict[int, int] = {}  # track id -> the frame it was last shown
        self._frame = 0

    def __call__(self, predictions: Sequence[Prediction]) -> list[Prediction]:
        self._frame += 1
        shown = [p for p in predictions if self._shows(p)]
        for p in shown:
            self._last[p.track_id] = self._frame
        self._last = {t: f for t, f in self._last.items() if self._frame - f <= self.forget_after}
        return shown

    def _shows(self, p: Prediction) -> bool:
        if not p.region.cat_look:
            # Only a name of one of my cats overrules the second look, and only while it holds: a dog
            # never got one, and a cat of mine the look takes for a dog mostly keeps its name.
            return p.label != UNKNOWN
        return p.track_id in self._last or seen_as_cat(p, self.sure, self.flat)


def make_finder(mode: str, cfg: RegionsConfig, threads: int = 2) -> Finder:
    """The region finder of a crop mode: `center`, or `detect` with `cfg.detector` (cats or faces)."""
    if mode != "detect":
        return center_finder
    return CatRegions(cfg, threads=threads) if cfg.detector == "cats" else FaceFinder(cfg)


def zoom_factors(zooms: int, step: float) -> tuple[float, ...]:
    """The sides, relative to a region's, of its views: 1, step, step**2, ... (`zooms` of them)."""
    return tuple(step ** k for k in range(zooms))


def zoomed(regions: Sequence[Region], factors: Sequence[float], width: int, height: int) -> list[Region]:
    """Every region shrunk about its centre by each factor, factor-major: [r0*f0, r1*f0, ..., r0*f1, ...].

    A found cat's square also holds whatever is around the cat (a strip of another room, the
    corners around it), and the classifier never saw a cat in those surroundings; a view nearer
    the cat leaves them out (bench/find_cats.py, the same cut: off-centre cats named right 0.79 ->
    0.89 with three views; strangers pass more often too, so the cut is stricter, train.unknown_keep).
    """
    out = []
    for f in factors:
        for region in regions:
            x, y, w, h = region.box
            side = max(1, min(int(round(max(w, h) * f)), width, height))
            nx = int(round(min(max(x + w / 2 - side / 2, 0), width - side)))
            ny = int(round(min(max(y + h / 2 - side / 2, 0), height - side)))
            out.append(Region((nx, ny, side, side), region.source))
    return out


def centre_square(region: Region, width: int, height: int, above: float | None) -> Region | None:
    """The frame's centred square, when `region` is a found cat at least `above` of the frame's shorter side
    across that holds the frame's centre (a cat filling the picture); else None.

    Such a cat was framed the way the photos the model learnt from were (whole, about the middle), and
    the centre square is the view `--crop center` names best; the finder's box sits off it, often by a
    fifth of the frame (bench/app_speed.py's centred clip: 0.909 of the frames named right in detect
    mode without this view, 0.929 with it, the centre crop 0.939).
    """
    x, y, w, h = region.box
    side = min(width, height)
    if above is None or region.source != "detect" or max(w, h) < above * side:
        return None
    if not (x <= width / 2 <= x + w and y <= height / 2 <= y + h):
        return None
    return Region(((width - side) // 2, (height - side) // 2, side, side), region.source)


def views_of(regions: Sequence[Region], factors: Sequence[float], fresh: Sequence[bool], turn: int,
             width: int, height: int, centre_above: float | None = None) -> tuple[list[Region], list[int]]:
    """The views to classify this frame and, for each, the index of its region.

    A `fresh` region (no track yet) gets all its views; a tracked one only the `turn`-th (modulo
    their number), so over `len(factors)` frames it has had each view once and the smoother takes
    the surest of its last `len(factors)` frames (Smoother `recent`): the same choice as all views
    every frame, at a third of the crops (bench/app_speed.py, bench/find_cats.py). A cat filling
    the picture (`centre_square`) is seen in the frame's centre square in place of its second view
    (of the three views, replacing the second measured best: the first 0.904, the third 0.917).
    """
    views, owners = [], []
    for i, (region, new) in enumerate(zip(regions, fresh)):
        own = zoomed([region], factors, width, height)
        centre = centre_square(region, width, height, centre_above) if len(own) > 1 else None
        if centre is not None:
            own[1] = centre
        own = own if new else [own[turn % len(own)]]
        views += own
        owners += [i] * len(own)
    return views, owners


def surest(probs: np.ndarray, owners: Sequence[int], n: int) -> np.ndarray:
    """For each of `n` regions, the row of `probs` (one per view, `owners[i]` its region) that is surest.

    The surest view is the one that looks most like one of my cats (the gate folds that
    into the top probability), so a view with foreign surroundings cannot hide the cat.
    """
    probs, owners = np.asarray(probs), np.asarray(owners, dtype=int)
    top = probs.max(axis=1)
    out = np.empty((n, probs.shape[-1]), probs.dtype)
    for i in range(n):
        rows = np.flatnonzero(owners == i)
        out[i] = probs[rows[np.argmax(top[rows])]]
    return out


def crops(frame: np.ndarray, regions: Sequence[Region], size: tuple[int, int]) -> np.ndarray:
    """The regions of a BGR frame as one RGB uint8 batch [N, H, W, 3] at the classifier's size."""
    h, w = size
    batch = np.empty((len(regions), h, w, 3), np.uint8)
    for i, region in enumerate(regions):
        x, y, bw, bh = region.box
        patch = frame[y:y + bh, x:x + bw]
        # INTER_AREA when shrinking avoids aliasing; the usual case is a 480px square to 160px.
        interp = cv2.INTER_AREA if bw > w else cv2.INTER_LINEAR
        cv2.cvtColor(cv2.resize(patch, (w, h), interpolation=interp), cv2.COLOR_BGR2RGB, dst=batch[i])
    return batch
