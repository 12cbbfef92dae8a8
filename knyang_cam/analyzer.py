"""One frame in, smoothed predictions out: regions -> one batched classification -> smoothing."""
from __future__ import annotations

import time

import numpy as np

from .config import Config
from .cuts import CutDetector
from .regions import SeenCats, crops, make_finder, surest, views_of, zoom_factors
from .results import Prediction
from .smoothing import Smoother, one_box_per_cat


class Analyzer:
    """One frame in, smoothed predictions out, with the time spent detecting and inferring.

    Every region of a frame (one per cat in detect mode, none when no cat is in view) goes to the
    classifier in one batched call: a new region in all its `regions.zooms` views, a tracked one
    in one of them a frame, in turn (`regions.views_in_turn`).
    """

    def __init__(self, cfg: Config, classifier, unknown_threshold: float):
        self.cfg, self.classifier = cfg, classifier
        self.finder = make_finder(cfg.regions.crop, cfg.regions, cfg.classifier.threads)
        self.factors = zoom_factors(cfg.regions.zooms, cfg.regions.zoom_step)
        in_turn = cfg.regions.views_in_turn
        self.smoother = Smoother.from_config(classifier.classes, cfg.smoothing, unknown_threshold,
                                             recent=len(self.factors) if in_turn else 1, crop=cfg.regions.crop)
        self.cuts = CutDetector(cfg.smoothing.cut_threshold)
        self.seen_cats = SeenCats(cfg.regions.sure_cat, cfg.regions.flat, cfg.smoothing.forget_after)
        self.turn = 0
        self.shape: tuple[int, ...] | None = None  # the last frame's (height, width)

    def set_mode(self, mode: str) -> None:
        """Look for regions by crop `mode` ('center' or 'detect') from the next frame; every track is forgotten."""
        self.finder = make_finder(mode, self.cfg.regions, self.cfg.classifier.threads)
        self.smoother.alpha = self.cfg.smoothing.alpha_for(mode)
        self.smoother.reset()

    @property
    def classes(self) -> tuple[str, ...]:
        """The current classifier's class names, in its output order."""
        return self.classifier.classes

    def swap(self, classifier, unknown_threshold: float) -> None:
        """Classify with `classifier` from the next frame; tracks carry over only when its classes are the same."""
        self.classifier = classifier
        self.smoother.reset(classifier.classes, unknown_threshold)

    def __call__(self, image: np.ndarray) -> tuple[list[Prediction], float, float]:
        t0 = time.perf_counter()
        shape, self.shape = self.shape, image.shape[:2]
        if self.cuts(image) or shape not in (None, self.shape):
            # A cut, or a camera back at another resolution (the same scene: no cut, but the boxes held are
            # in the old frame's pixels): the boxes held or tracked are wrong; search this frame afresh.
            self.smoother.reset()
            getattr(self.finder, "reset", lambda: None)()
        regions = self.finder(image)
        t1 = time.perf_counter()
        in_turn = self.smoother.recent > 1
        fresh = [not t for t in self.smoother.tracked(regions)] if in_turn else [True] * len(regions)
        views, owners = views_of(regions, self.factors, fresh, self.turn, image.shape[1], image.shape[0],
                                 self.cfg.regions.centre_view)
        self.turn += 1
        probs = surest(self.classifier.predict(crops(image, views, self.classifier.input_size)), owners, len(regions))
        shown = self.seen_cats(self.smoother.update(regions, probs))
        predictions = one_box_per_cat(shown, self.cfg.smoothing.same_cat_iou)
        return predictions, (t1 - t0) * 1000, (time.perf_counter() - t1) * 1000
