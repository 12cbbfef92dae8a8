"""Live retraining in the app: labelled crops -> background retrain -> a new model ready to swap in."""
from __future__ import annotations

from . import model_dir
from .background_retrain import BackgroundRetrain
from .classify import load_classifier
from .config import Config
from .dataset import Saver
from .model_dir import ModelError, ModelInfo


class Teacher:
    """Labelled crops -> background retrain -> a new model swapped in between two frames."""

    def __init__(self, cfg: Config, model: ModelInfo):
        self.cfg, self.model = cfg, model
        r = cfg.retrain
        self.job = BackgroundRetrain(cfg.app.dataset_root, r.models_dir, r.max_accuracy_drop, cfg.train)
        self._labelled_at_start = 0

    def start(self, saver: Saver) -> str:
        """Start a background retrain of the current model; returns the toast (a refusal while one runs)."""
        if not self.job.start(self.model.path):
            # The model is swapped in as soon as the child says so; the child exits a second or two later.
            return "the last retrain is still closing: press t again in a moment" if self.job.closing \
                else "a retrain is already running"
        self._labelled_at_start = saver.labelled
        return "retraining in the background"

    def auto_start(self, saver: Saver) -> str:
        """Start a retrain once `retrain.auto_after` crops were labelled since the last; returns its toast, or ''."""
        due = self.cfg.retrain.auto_after and saver.labelled - self._labelled_at_start >= self.cfg.retrain.auto_after
        return self.start(saver) if due and not self.job.running else ""

    def swapped(self) -> tuple[ModelInfo, object, str] | None:
        """The finished retrain's model, loaded and ready, with a message; None otherwise."""
        outcome = self.job.poll()
        if outcome is None:
            return None
        if not outcome.accepted:
            return None, None, outcome.message
        try:
            model = model_dir.read(outcome.model)
            classifier = load_classifier(model, self.cfg.classifier.backend, self.cfg.classifier.threads)
        except ModelError as e:
            return None, None, f"new model not used: {e}"
        self.model = model
        return model, classifier, outcome.message

    def close(self) -> None:
        """Stop a running retrain; nothing when none runs."""
        self.job.close()
