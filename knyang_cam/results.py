"""Small frozen values passed between the stages: regions -> classifier -> smoothing -> overlay/sinks."""
from __future__ import annotations

from dataclasses import dataclass

Box = tuple[int, int, int, int]  # x, y, w, h in frame pixels
SOURCES = ("center", "detect")
UNKNOWN = "unknown"
# Reserved dataset folders, never class names: `u` saves to <root>/unlabeled, the not-mine key to
# <root>/not_mine (crops of cats that are not the user's: negatives for training).
UNLABELED = "unlabeled"
NOT_MINE = "not_mine"
RESERVED_NAMES = (UNKNOWN, UNLABELED, NOT_MINE)
# A dataset's split folders, matched in any letter case, made with these names (docs/contracts.md).
SPLIT_NAMES = {"train": "Train", "validation": "Validation", "test": "Test"}



def intersection(a: Box, b: Box) -> int:
    """The area two (x, y, w, h) boxes share; 0 when they do not touch."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return max(0, min(ax + aw, bx + bw) - max(ax, bx)) * max(0, min(ay + ah, by + bh) - max(ay, by))


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, w, h) boxes; 0.0 when they do not touch."""
    inter = intersection(a, b)
    if inter <= 0:
        return 0.0
    return inter / float(a[2] * a[3] + b[2] * b[3] - inter)

@dataclass(frozen=True)
class Region:
    """Where one crop is: `box` (x, y, w, h) with w, h > 0, `source` "center" or "detect", `score`
    in [0, 1], how sure the cat finder was of a cat there (1.0 where no finder judged), and whether its
    second look took it for a cat; else ValueError."""

    box: Box
    source: str  # "center" or "detect"
    score: float = 1.0
    cat_look: bool = True  # False: the finder's second look (knyang_cam/cat_species.py) took it for no cat

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"region source must be one of {SOURCES}, got {self.source!r}")
        if len(self.box) != 4 or self.box[2] <= 0 or self.box[3] <= 0:
            raise ValueError(f"region box must be (x, y, w, h) with w, h > 0, got {self.box!r}")
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"region score must be in [0, 1], got {self.score!r}")


@dataclass(frozen=True)
class Prediction:
    """The decision shown for one region after smoothing."""

    region: Region
    label: str  # a class name or UNKNOWN
    confidence: float  # smoothed top probability
    probs: tuple[float, ...]  # smoothed, in the model's class order
    track_id: int = 0

    def __post_init__(self):
        if not 0.0 <= self.confidence <= 1.0 + 1e-6:
            raise ValueError(f"confidence {self.confidence} not in [0, 1]")

    def to_log(self, classes) -> dict:
        """The region entry of the prediction log (docs/contracts.md)."""
        return {
            "box": [int(v) for v in self.region.box],
            "source": self.region.source,
            "label": self.label,
            "confidence": round(float(self.confidence), 4),
            "probs": {c: round(float(p), 4) for c, p in zip(classes, self.probs)},
        }
