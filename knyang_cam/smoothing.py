"""Per-region temporal smoothing and the unknown decision.

A region is followed from frame to frame by box overlap (a "track"); each track
keeps an exponential moving average of the class probabilities, so one odd frame
does not change the name on screen. The shown label is the averaged winner when
its probability reaches the unknown threshold, else UNKNOWN.

Two guards against flicker, both cheap at 150 FPS:
- hysteresis: a label already shown is kept while its averaged probability stays
  within `hysteresis` below the threshold and within `hysteresis` of the best
  class, so a score hovering at the threshold (or two cats scoring alike) does
  not flip the label every frame; entering a label still needs the threshold.
- hold: a new decision is shown only after it has been the decision for `hold`
  frames in a row, so one wild frame (a confident wrong score that drags the
  average below the threshold) never reaches the screen. A new track shows its
  first decision at once. A shown name that was not the decision for `hold` frames
  in a row goes to `unknown` when no other decision held that long: another cat
  hovering at the threshold in its place (unknown, its name, unknown...) once kept
  the old name on screen for as long as it hovered.

One cat is in one place: within a frame, a name goes to one region only (with
`exclusive`). The names go to the regions together: the assignment of distinct
names (or none) with the highest joint probability, so two grey tabbies side by
side that both lean to one name come out as the two cats rather than one cat
twice. Giving the surest region its best name first would let one wrong region
(a loose box over a tabby, sure of the other tabby) push the other tabby onto the
name left over: two errors for one (bench/find_cats.py seed 13, three cats).
Regions that overlap by `same_cat_iou` or more are left out of that rule: the cat
finder splits a cat that fills the picture in two boxes (then in a quarter of the
frames of bench/app_speed.py's clip, now in a tenth), and the smaller box, made to take the cat's
next best, named a cat that was not there. Such a part may share the surer region's
name but shows no other: a part of a cat alone often reads as another cat (on that
clip, regions naming a cat that is not there 0.055 -> 0.031 per frame).
One cat is one box: such a part is not shown at all (`one_box_per_cat`).
"""
from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .results import UNKNOWN, Box, Prediction, Region, iou

# Regions searched jointly for exclusive names: at most (N + 1)^N options, under 2 ms a frame for 5 regions
# that all want one name (default max_regions: 4).
MAX_JOINT = 5


@dataclass
class _Track:
    track_id: int
    box: Box
    probs: np.ndarray  # the moving average, float64 [C]
    last_seen: int  # frame counter value of the last update that matched this track
    frames: int = 1  # frames averaged so far
    label: str = UNKNOWN  # shown
    pending: str = UNKNOWN  # a decision differing from `label`, waiting out `hold`
    pending_n: int = 0
    lost_n: int = 0  # frames in a row whose decision was not `label`, whatever it was
    recent: deque = field(default_factory=deque)  # the last `recent` frames' raw probabilities


def _without(p: np.ndarray, taken: set[int]) -> np.ndarray:
    """`p` given that the region is none of the `taken` classes (their entries become -1).

    The model pulls an unfamiliar crop's probabilities towards uniform, so `p` is read as
    a share (1 - C * min p) the head gave and an even floor (min p each) that says
    "unknown". Only the head's share moves to the classes left; the floor stays where
    it is, so a stranger next to one of two cats does not become the other cat.
    """
    floor = float(p.min())
    head = p - floor
    head[list(taken)] = 0.0
    out = np.full_like(p, floor)
    if head.sum() > 0:
        out += head / head.sum() * (1.0 - floor * len(p))
    out[list(taken)] = -1.0
    return out


def _joint(probs: Sequence[np.ndarray], apart: np.ndarray) -> list[int]:
    """The class of each region (-1: none) with the highest joint probability, no class twice
    among regions `apart` (a boolean [N, N] matrix).

    A region with no class counts its floor (its smallest probability, the share the gate left
    for "none of mine"), so one goes without only where the names run out. Each region needs
    only its top N classes (at most N - 1 are taken by the others), so the search is small for
    the few cats of a frame; past MAX_JOINT regions it gives each, surest first, its best free class.
    """
    n = len(probs)
    best = [int(np.argmax(p)) for p in probs]
    if not any(apart[i, j] and best[i] == best[j] for i in range(n) for j in range(i + 1, n)):
        return best
    if n > MAX_JOINT:
        out = [-1] * n
        for i in sorted(range(n), key=lambda i: -float(np.max(probs[i]))):
            free = [c for c in np.argsort(-probs[i]) if all(out[j] != c for j in range(n) if apart[i, j])]
            out[i] = int(free[0]) if free else -1
        return out
    logs = [np.log(np.maximum(p, 1e-12)) for p in probs]
    options = [[(float(logs[i][c]), int(c)) for c in np.argsort(-probs[i])[:n]] + [(float(logs[i].min()), -1)]
               for i in range(n)]
    top = [max(o[0] for o in opts) for opts in options]
    found: tuple[float, list[int]] = (-np.inf, best)

    def search(i: int, score: float, chosen: list[int]) -> None:
        nonlocal found
        if score + sum(top[i:]) <= found[0]:
            return
        if i == n:
            found = (score, list(chosen))
            return
        for s, c in options[i]:
            if c < 0 or all(chosen[j] != c for j in range(i) if apart[i, j]):
                chosen.append(c)
                search(i + 1, score + s, chosen)
                chosen.pop()

    search(0, 0.0, [])
    return found[1]


class Smoother:
    """Turns each frame's raw probabilities into stable per-region Predictions.

    Not thread-safe; one instance per video stream. Track ids grow for the life
    of the instance and are never reused, also across `reset`.
    """

    def __init__(self, classes: Sequence[str], alpha: float = 0.25, iou_match: float = 0.3,
                 forget_after: int = 15, unknown_threshold: float = 0.6,
                 hysteresis: float = 0.05, hold: int = 2, exclusive: bool = True, recent: int = 1,
                 same_cat_iou: float = 0.2):
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if not 0.0 <= iou_match <= 1.0:
            raise ValueError(f"iou_match must be in [0, 1], got {iou_match}")
        if forget_after < 1:
            raise ValueError(f"forget_after must be >= 1, got {forget_after}")
        if not 0.0 <= hysteresis < 0.5:
            raise ValueError(f"hysteresis must be in [0, 0.5), got {hysteresis}")
        if hold < 1:
            raise ValueError(f"hold must be >= 1, got {hold}")
        if recent < 1:
            raise ValueError(f"recent must be >= 1, got {recent}")
        if not 0.0 <= same_cat_iou <= 1.0:
            raise ValueError(f"same_cat_iou must be in [0, 1], got {same_cat_iou}")
        self.alpha = alpha
        self.iou_match = iou_match
        self.forget_after = forget_after
        self.hysteresis = hysteresis
        self.hold = hold
        self.exclusive = exclusive
        self.same_cat_iou = same_cat_iou
        self.recent = recent
        self.classes: tuple[str, ...] = ()
        self.unknown_threshold = 0.0
        self._tracks: list[_Track] = []
        self._frame = 0
        self._next_id = 1
        self.reset(classes, unknown_threshold)

    @classmethod
    def from_config(cls, classes: Sequence[str], cfg, unknown_threshold: float, recent: int = 1,
                    crop: str = "center") -> Smoother:
        """A smoother with the settings of a SmoothingConfig (`smoothing:` in config.yaml) for crop mode `crop`."""
        return cls(classes, alpha=cfg.alpha_for(crop), iou_match=cfg.iou_match, forget_after=cfg.forget_after,
                   unknown_threshold=unknown_threshold, hysteresis=cfg.hysteresis, hold=cfg.hold,
                   exclusive=cfg.exclusive, recent=recent, same_cat_iou=cfg.same_cat_iou)

    @property
    def track_count(self) -> int:
        """How many regions are tracked now."""
        return len(self._tracks)

    def reset(self, classes: Sequence[str] | None = None,
              unknown_threshold: float | None = None) -> None:
        """Forget tracks; for a hot-swapped model pass its classes (and threshold).

        - `reset()` drops every track (e.g. after a pause or a crop-mode switch).
        - `reset(classes)` with the same class list, in the same order, keeps the
          tracks: a retrained model of the same cats continues their averages.
        - `reset(classes)` with a different list drops every track, because the
          averaged probabilities are indexed by the old class order.
        """
        if unknown_threshold is not None:
            if not 0.0 <= unknown_threshold <= 1.0:
                raise ValueError(f"unknown_threshold must be in [0, 1], got {unknown_threshold}")
            self.unknown_threshold = float(unknown_threshold)
        if classes is not None:
            classes = tuple(classes)
            if len(classes) < 1:
                raise ValueError("a smoother needs at least one class")
            if classes == self.classes:
                return
            self.classes = classes
        self._tracks = []

    def tracked(self, regions: Sequence[Region]) -> list[bool]:
        """Whether each region would continue a track in the next `update` (False: it starts one)."""
        assigned = self._match(regions)
        return [i in assigned for i in range(len(regions))]

    def update(self, regions: Sequence[Region], probs: np.ndarray) -> list[Prediction]:
        """Advance one frame: `probs[i]` are the raw probabilities of `regions[i]`.

        With `recent` > 1 a track averages, each frame, the surest of its last `recent` frames'
        probabilities: the app classifies one view of a tracked region a frame, in turn
        (regions.views_of), and this takes the surest view as if all had been seen at once.

        Returns one Prediction per region, in the order of `regions`.
        """
        probs = np.asarray(probs, dtype=np.float64)
        if regions and probs.shape != (len(regions), len(self.classes)):
            raise ValueError(f"probs must have shape {(len(regions), len(self.classes))} "
                             f"(regions, classes), got {probs.shape}")
        self._frame += 1
        assigned = self._match(regions)
        tracks = []
        for i, region in enumerate(regions):
            track = assigned.get(i)
            if track is None:
                # A new region starts from its own first frame: there is no history to trust more.
                track = _Track(self._next_id, region.box, probs[i].copy(), self._frame,
                               recent=deque([probs[i]], maxlen=self.recent))
                self._next_id += 1
                self._tracks.append(track)
            else:
                # The plain mean of the track's frames until it has 1 / alpha of them: an early frame
                # weighs no more than a later one (a moving average started on the first frame would
                # keep that frame's share above alpha for a while).
                track.frames += 1
                track.recent.append(probs[i])
                surest = max(reversed(track.recent), key=np.max)  # a tie goes to the newest frame
                w = max(self.alpha, 1.0 / track.frames)
                track.probs = w * surest + (1.0 - w) * track.probs
                track.box = region.box
                track.last_seen = self._frame
            tracks.append(track)
        n = len(regions)
        apart = np.array([[i != j and not one_cat(regions[i].box, regions[j].box, self.same_cat_iou)
                           for j in range(n)] for i in range(n)], dtype=bool).reshape(n, n)
        # Each region's name in the best joint assignment; regions decided already count with the
        # name they show (hysteresis and hold can keep another), so no name is shown twice.
        claim = _joint([t.probs for t in tracks], apart) if self.exclusive else [-1] * n
        given = [t.probs for t in tracks]  # each region's probabilities given the names the others take
        decided: list[int] = []
        for i in sorted(range(n), key=lambda i: -float(np.max(tracks[i].probs))):
            track = tracks[i]
            taken = {c for j, c in enumerate(claim) if apart[i, j] and c >= 0}
            if taken:
                given[i] = _without(track.probs, taken)
            decision = self._decide(track, given[i])
            if i not in assigned or (track.label != UNKNOWN and self.classes.index(track.label) in taken):
                # A new region shows its first decision at once; a name another region took this
                # frame is a certain error: no hold for it either.
                track.label, track.pending_n, track.lost_n = decision, 0, 0
            else:
                self._advance(track, decision)
            if self.exclusive:
                shown = self.classes.index(track.label) if track.label != UNKNOWN else -1
                if shown >= 0 and any(claim[j] >= 0 and claim[j] != shown and not apart[i, j] for j in decided):
                    # Over a surer region that shows another name: a part of that cat, which alone
                    # reads as another, or two cats the finder could not part; either way no name.
                    track.label, track.pending_n, track.lost_n, shown = UNKNOWN, 0, 0, -1
                claim[i] = shown
                decided.append(i)
        self._tracks = [t for t in self._tracks if self._frame - t.last_seen < self.forget_after]
        return [self._prediction(r, t, g) for r, t, g in zip(regions, tracks, given)]

    def _match(self, regions: Sequence[Region]) -> dict[int, _Track]:
        """Greedy matching, best overlap first; boxes that do not touch never match."""
        pairs = []
        for i, region in enumerate(regions):
            for track in self._tracks:
                o = iou(region.box, track.box)
                if o > 0.0 and o >= self.iou_match:
                    pairs.append((o, i, track.track_id, track))
        pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
        assigned: dict[int, _Track] = {}
        taken: set[int] = set()
        for _, i, tid, track in pairs:
            if i not in assigned and tid not in taken:
                assigned[i] = track
                taken.add(tid)
        return assigned

    def _decide(self, track: _Track, p: np.ndarray) -> str:
        best = int(np.argmax(p))
        if track.label != UNKNOWN:
            cur = p[self.classes.index(track.label)]
            if cur >= self.unknown_threshold - self.hysteresis and cur >= p[best] - self.hysteresis:
                return track.label
        return self.classes[best] if p[best] >= self.unknown_threshold else UNKNOWN

    def _advance(self, track: _Track, decision: str) -> None:
        if decision == track.label:
            track.pending_n = track.lost_n = 0
            return
        track.lost_n += 1
        if decision == track.pending and track.pending_n:
            track.pending_n += 1
        else:
            track.pending, track.pending_n = decision, 1
        if track.pending_n >= self.hold:
            track.label, track.pending_n, track.lost_n = decision, 0, 0
        elif track.lost_n >= self.hold:
            # The name lost `hold` frames in a row, to decisions that keep changing (another cat hovering
            # at the threshold: unknown, its name, unknown...): none is shown yet, and neither is the old name.
            track.label, track.lost_n = UNKNOWN, 0

    def _prediction(self, region: Region, track: _Track, given: np.ndarray) -> Prediction:
        # The confidence shown is that of the shown name (under hysteresis it may trail the best);
        # the probabilities logged are the model's, before other regions took their names.
        shown = self.classes.index(track.label) if track.label != UNKNOWN else int(np.argmax(given))
        return Prediction(region=region, label=track.label,
                          confidence=float(min(1.0, max(0.0, given[shown]))),
                          probs=tuple(float(v) for v in track.probs), track_id=track.track_id)


def one_cat(a, b, same_cat_iou: float) -> bool:
    """Whether boxes `a` and `b` are parts of one cat: they overlap, by `same_cat_iou` (IoU) or more.

    Boxes apart are two cats even at `same_cat_iou` 0 (any overlap), which would otherwise make every
    region of a frame one cat and show only the surest."""
    overlap = iou(a, b)
    return overlap > 0.0 and overlap >= same_cat_iou


def one_box_per_cat(predictions: Sequence[Prediction], same_cat_iou: float) -> list[Prediction]:
    """The predictions to show, in their order: none that overlaps a surer shown one by `same_cat_iou` (IoU).

    The smoother takes such a region for a part of the surer one's cat (it may share that name but
    shows no other), so on screen it was a second box on one cat, most often reading `unknown`
    (frames with two or more boxes on bench/app_speed.py's clip of single cats: 396 of 4500 -> 147;
    bench/find_cats.py: the same cats named right). Its track goes on in the smoother, out of sight.
    """
    kept: list[int] = []
    for i in sorted(range(len(predictions)), key=lambda i: -max(predictions[i].probs, default=0.0)):
        if not any(one_cat(predictions[i].region.box, predictions[j].region.box, same_cat_iou) for j in kept):
            kept.append(i)
    return [predictions[i] for i in sorted(kept)]
