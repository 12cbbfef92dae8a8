"""From a dataset folder to a model directory, for `python -m train` and the live retrain alike.

`train_model` (python -m train) builds the network (and, with train.fine_tune_epochs,
fine-tunes the top of its base); `train.retrain` loads the current model instead. Both end
in `finish`: features of the training crops (cached), the softmax head, the open-set gate
(train/familiar.py: my cats' references, other animals, the unknown cut chosen with each
burst held out), the validation scores and the export.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from knyang_cam import bundled
from knyang_cam.config import TrainConfig
from knyang_cam.model_dir import ModelInfo
from knyang_cam.results import SPLIT_NAMES

from . import data, evaluate, familiar, features, fit, folds, negatives, recipe, report, tflite_edit
from .export import tflite_bytes, write_model_dir
from .model import Backbone, build, classifier

# A class with fewer training photos than this is reported as thin: its figures rest on little.
THIN_CLASS = 10
# A class whose photos are fewer groups than this (bursts, near-duplicates: folds.groups) is reported
# as taken in few moments. Chungdam's 50 training photos are 5 bursts shot within three minutes, Hwamok's
# 80 are 8; the other cats' are 27-78. New photos of those two are what the bundled model gets wrong
# most (the tabbies named as each other, Chungdam read unknown), and it is more photos, not a recipe,
# that would help: nothing else tells a user that 50 photos can be five.
FEW_MOMENTS = 10
# A patched .tflite must give what the Keras-side numbers give on this many validation photos, to
# within CHECK_ATOL (TensorFlow's and XNNPACK's float sums differ by ~1e-6; a wrong tensor by far more).
CHECK_PHOTOS, CHECK_ATOL = 8, 2e-3


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class TrainResult:
    """What a finished training wrote to `out`: accuracies, threshold, skipped files, seconds, acceptance."""

    out: Path
    val_accuracy: float
    test_accuracy: float | None
    unknown_threshold: float
    skipped: tuple[tuple[Path, str], ...]
    seconds: dict  # wall time per stage
    features_computed: int  # crops that ran through the backbone; the rest came from the cache
    accepted: bool = True
    reason: str = ""
    warnings: tuple[str, ...] = ()
    tflite_patched: bool = False  # model.tflite is the current one patched (train/tflite_edit.py), not converted
    val_named_right: float | None = None  # validation centre squares named right, unknown counting as wrong


@dataclass
class Stages:
    """Wall time per stage, reported as each one ends (`report(name, seconds)`)."""

    report: Callable[[str, float], None] = lambda name, seconds: None
    seconds: dict = field(default_factory=dict)
    _clock: float = field(default_factory=time.perf_counter)

    def lap(self, name: str) -> None:
        """Record the seconds since the last lap (or the start) as stage `name`, and report them."""
        now = time.perf_counter()
        self.seconds[name] = round(now - self._clock, 2)
        self._clock = now
        self.report(name, self.seconds[name])


@dataclass(frozen=True)
class Recipe:
    """Which crops `finish` computes: of each training photo, and whether the validation photos' crops too."""

    head_views: tuple  # of each training photo, for the head (the first `ref_views` are references too)
    ref_views: int
    val_crops: bool  # score the validation photos' crops too (EVAL_VIEWS)
    turned: tuple = ()  # of each training photo, for the gate alone: references turned (recipe.turned)
    selected_on: str = ("the recipe's settings (views, head, open-set score, cut rule) were chosen on "
                        "the source repository's bench/quality.py: 5-fold cross-validation x 2 over Train and "
                        "Validation together, "
                        "folds grouped by burst and near-duplicate (models/README.md), not on Validation; "
                        "the share the cut keeps, on the figures as the app sees them (each crop in "
                        "regions.zooms views, the surest counts)")

    @classmethod
    def full(cls, cfg: TrainConfig) -> Recipe:
        """The full recipe for `cfg`: the first `head_views` crops, `reference_views` of them references (the
        first recipe.TURNED_REFS of those turned too), val crops."""
        refs = min(cfg.reference_views, cfg.head_views)
        return cls(recipe.TRAIN_VIEWS[:cfg.head_views], refs, True,
                   recipe.turned(recipe.TRAIN_VIEWS[:min(refs, recipe.TURNED_REFS)]))


@dataclass(frozen=True)
class Reuse:
    """The current model's .tflite and what its head and gate hold: a retrain patches it instead of converting."""

    tflite: bytes
    old: tflite_edit.HeadParams


def _patched(reuse: Reuse, new: tflite_edit.HeadParams, pixels: np.ndarray, expected: np.ndarray) -> bytes | None:
    """`reuse.tflite` with the new head and gate, checked on `pixels` against `expected`; None: convert instead."""
    try:
        patched = tflite_edit.patch_head(reuse.tflite, reuse.old, new)
        got = tflite_edit.run(patched, pixels)
    except tflite_edit.GraphError as e:
        # A new cat is the usual reason, and not a fault: say so rather than quote the shapes.
        why = "the cats changed" if np.shape(reuse.old.kernel) != np.shape(new.kernel) else e
        _log(f"note: model.tflite is converted anew, not patched ({why})")
        return None
    worst = float(np.abs(got - expected).max()) if len(got) else 0.0
    if got.shape != expected.shape or worst > CHECK_ATOL:
        _log(f"note: the patched model.tflite is off by {worst:.4f}: converting the network")
        return None
    return patched


def _gate_in_int8(tflite: bytes, gate: familiar.Gate) -> bytes:
    """The converted `tflite` with the gate's rows as int8 (tflite_edit.quantize_gate); as converted if it
    cannot be edited: as right, slower."""
    try:
        return tflite_edit.quantize_gate(tflite, gate.refs, gate.others)
    except tflite_edit.GraphError as e:
        _log(f"note: model.tflite keeps its gate in float32 ({e})")
        return tflite


def _mirrored(f_views: np.ndarray, n_views: int) -> np.ndarray:
    """[photos * 2n, D] rows of (views, mirrored views) per photo -> [photos, n, D] averaged, as the model does."""
    x = f_views.reshape(-1, 2, n_views, f_views.shape[-1])
    return x.mean(axis=1)


# The head refitted on every photo starts from the one fitted without the validation photos and takes
# this share of its steps: on grouped folds (bench/refit.py, 5 x 2, the five cats) a third gave the fit
# from zeros' answers on 0.996 of held-out clip frames and its accuracy (top class 0.926 against 0.925),
# in a third of the time (2.3 s against 6.5 on a quiet machine).
REFIT_STEPS = 1 / 3


def _fit_head(rows: np.ndarray, turned: np.ndarray, labels: np.ndarray, cfg: TrainConfig, n_classes: int,
              other: np.ndarray | None, val=None, start=None):
    """The softmax head on each photo's crops `rows` and turned crops `turned` (photo-major; recipe.TURNED_REFS),
    and `other` animals as one class more (None: a head of the cats alone): (kernel, bias, curves); `val` draws
    curves. From `start` (a fitted kernel and bias), it takes REFIT_STEPS of the steps."""
    d = rows.shape[-1]
    x = np.concatenate([rows.reshape(len(labels), -1, d), turned.reshape(len(labels), -1, d)], 1)
    y = np.repeat(labels, x.shape[1])
    x = x.reshape(-1, d)
    if other is not None:
        x, y = np.concatenate([x, other]), np.concatenate([y, np.full(len(other), n_classes)])
    steps = cfg.head_epochs if start is None else max(1, round(cfg.head_epochs * REFIT_STEPS))
    return recipe.fit_softmax(x, y, n_classes + (other is not None), cfg.head_l2, steps, cfg.head_learning_rate,
                              curve_every=max(1, steps // 30), val=val, start=start)


def photo_groups(rows: np.ndarray, paths: tuple, labels: np.ndarray, n_views: int) -> np.ndarray:
    """Group id per photo of `rows` (photo-major, `n_views` crops each, of `paths`): bursts and near-duplicates
    (folds.groups, on the first crop of each photo)."""
    return folds.groups(paths, recipe.gate_part(rows[::n_views]), labels)


def _fit_gate(rows: np.ndarray, turned: np.ndarray, group_of: np.ndarray, labels: np.ndarray, n_views: int,
              plan: Recipe, cfg: TrainConfig, others: np.ndarray, n_classes: int) -> familiar.Gate:
    """The open-set gate on the first `plan.ref_views` crops of each photo of `rows` (photo-major; `group_of`:
    photo_groups) and its `plan.turned` crops, `turned` (photo-major)."""
    per_photo = rows.reshape(len(group_of), n_views, -1)
    turned = turned.reshape(len(group_of), len(plan.turned), rows.shape[-1])
    n_refs = plan.ref_views + len(plan.turned)
    ref_rows = np.concatenate([per_photo[:, :plan.ref_views], turned], 1).reshape(-1, rows.shape[-1])
    held = np.array(group_of)  # a copy: the caller counts a cat's moments on its groups
    for c in np.unique(labels):  # a cat whose photos are all one group: held out photo by photo
        members = labels == c
        if len(np.unique(held[members])) == 1:
            held[members] = held.max() + 1 + np.arange(members.sum())
    return familiar.fit_gate(ref_rows, np.repeat(held, n_refs), others, cfg.unknown_keep,
                             cfg.other_animal_weight, cfg.reference_merge, np.repeat(labels, n_refs), n_classes)


def relative(path: str | Path, root: Path) -> str:
    """A photo's name in report.VALIDATION_RIGHT: relative to its dataset when inside it."""
    path = Path(path)
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()


def _near_training(val_rows: np.ndarray, train_rows: np.ndarray) -> int:
    """How many validation photos (pooled centre-square rows) near-duplicate a training photo's.

    A burst split across Train and Validation flatters validation by several points (issue 12: 0.979
    on random folds, 0.903 with bursts kept together), and a user's own split cannot be seen to do it.
    """
    if not len(val_rows) or not len(train_rows):
        return 0
    val, train = (recipe.unit(recipe.gate_part(r)) for r in (val_rows, train_rows))
    return int(((val @ train.T).max(axis=1) >= folds.NEAR_DUPLICATE).sum())


def left_out(dataset: data.Dataset) -> tuple[str, ...]:
    """A warning per class folder without photos: the model will not know that cat, which nothing else says."""
    return tuple(f"class folder {folder} has no photos, so the model will not know that cat: add its photos "
                 f"or remove the folder" for folder in dataset.empty)


def outside_classes(dataset: data.Dataset) -> tuple[str, ...]:
    """A warning per folder with photos directly in it, beside the class folders: the model learns none of them."""
    folders: dict[Path, list[Path]] = {}
    for photo in dataset.loose:
        folders.setdefault(photo.parent, []).append(photo)
    return tuple(f"{data.n_photos(len(photos))} directly in {folder} (such as "
                 f"{photos[0].name}) {'is' if len(photos) == 1 else 'are'} in no cat's folder and left out of "
                 f"training: move each into its cat's folder" for folder, photos in folders.items())


def thin(classes: Sequence[str], counts: Sequence[int]) -> tuple[str, ...]:
    """A warning per class with fewer than THIN_CLASS photos to learn from, with the number."""
    return tuple(f"class {c} has only {data.n_photos(n)} to learn from (fewer than {THIN_CLASS}): its "
                 f"figures rest on little; add photos" for c, n in zip(classes, counts) if n < THIN_CLASS)


def few_moments(classes: Sequence[str], labels: np.ndarray, group_of: np.ndarray) -> tuple[str, ...]:
    """A warning per class of THIN_CLASS photos or more in fewer than FEW_MOMENTS groups (`group_of`: per photo)."""
    found = []
    for c, name in enumerate(classes):
        n, moments = int(np.sum(labels == c)), len(np.unique(group_of[labels == c]))
        if n >= THIN_CLASS and moments < FEW_MOMENTS:
            found.append(f"class {name}: its {n} photos are only {moments} different moments (bursts or near-identical "
                         f"shots), so the model knows {name} in those scenes more than {name}: add photos from other "
                         f"days, places and poses")
    return tuple(found)


def unmeasured(dataset: data.Dataset, val_labels: Sequence[int]) -> tuple[str, ...]:
    """A warning per class without a decodable photo in the user's Validation folder, naming where they go.

    Its row reads "-" and the accuracy says nothing of it, so a cat left out of Validation went unscored
    without a word (a live retrain's new cat too). Split by seed, only a one-photo class has none: `thin` names it.
    """
    if dataset.layout != "split":
        return ()
    folder = data.split_folder(dataset.root, SPLIT_NAMES["validation"])
    counts = np.bincount(np.asarray(val_labels, np.int64), minlength=len(dataset.classes))
    return tuple(f"class {c} has no validation photos: the validation figures say nothing of it; put a few "
                 f"of its photos (not those in Train) in {folder / c}" for c, n in zip(dataset.classes, counts)
                 if n == 0)


def in_two_classes(paths: Sequence[Path], labels: Sequence[int], classes: Sequence[str]) -> tuple[str, ...]:
    """A warning per photo whose very bytes are also in another cat's folder (of the decoded photos `paths`).

    A photo copied into the wrong cat's folder is a label the model learns both ways, and nothing
    else points at it: the confusion it causes looks like two cats that are hard to tell apart.
    """
    first: dict[str, tuple[Path, int]] = {}
    found = []
    for path, label in zip(paths, labels):
        seen, seen_label = first.setdefault(features.file_key(Path(path)), (path, label))
        if seen_label != label:
            found.append(f"the same photo is in two cats' folders: {seen} ({classes[seen_label]}) and {path} "
                         f"({classes[label]}); keep it in the right cat's folder only")
    return tuple(found)


def refused_out(out: str | Path) -> Path:
    """Where a model the accuracy check refused is written instead of `out`, for the user to look at."""
    out = Path(out)
    return out.with_name(out.name + "-refused")


def finish(extractor, drop, dense, dataset: data.Dataset, cfg: TrainConfig, out: Path, plan: Recipe,
           cache: features.FeatureCache, others: np.ndarray, stages: Stages,
           accept: Callable[[np.ndarray, np.ndarray, Sequence[str]], tuple[bool, str]] | None = None,
           before: Sequence[fit.PhaseHistory] = (), extra: dict | None = None,
           info_extra: dict | None = None, progress: Callable[[str], Callable] | None = None,
           embed: features.Embed | None = None, reuse: Reuse | None = None,
           other_rows: np.ndarray | None = None, other_photos: Sequence | None = None,
           others_checked: bool = False, learn_validation: bool = False) -> TrainResult:
    """Head, gate, scores and export on `extractor`'s (cached) features of `dataset`; writes `out`.

    A `dense` of one unit more than the classes learns other animals as its last class: `other_rows`
    (features of the bank's crops, train/negatives.py; `other_photos`: the photo of each) and the dataset's
    not_mine crops (recipe.shrink). The user's own photos are left out of them (negatives.without_mine), and
    out of the gate's `others` unless `others_checked` (a retrain: its model's gate left them out; a row
    fewer there would cost the model.tflite patch).

    `accept(val_vectors, val_labels, val_paths)` (the retrain's check against the current model) returns
    (accepted, reason); a refused model is written as `<out>-refused`. With `learn_validation` a Validation
    folder's photos are learnt once scored, as a split made here always is. `embed` computes the
    features in place of `extractor` (the same network, on LiteRT); with `reuse` the .tflite is
    the current one patched (train/tflite_edit.py), not a new conversion.
    """
    size = extractor.input_shape[1]
    side = features.PHOTO_SCALE * size
    shape = Backbone("none", size)
    counter = progress or (lambda what: None)

    def views_of(paths, labels, views, what):
        return features.view_features_for(paths, labels, extractor, shape, views, side, cache,
                                          batch_size=cfg.batch_size, progress=counter(what), embed=embed)

    train_f = views_of(dataset.train.paths, dataset.train.labels, plan.head_views, "training crops")
    turned_f = views_of(dataset.train.paths, dataset.train.labels, plan.turned, "turned training crops")
    n_views = len(plan.head_views)
    kept = tuple(dict.fromkeys(train_f.paths))
    train_labels = train_f.labels[::n_views]
    data.require_every_class(train_labels, dataset.classes, "training", dataset.root, train_f.skipped, dataset.train)
    eval_views = recipe.EVAL_VIEWS if plan.val_crops else recipe.EVAL_VIEWS[:1]
    both = eval_views + tuple(recipe.mirror(v) for v in eval_views)
    val_f = views_of(dataset.validation.paths, dataset.validation.labels, both, "validation crops")
    if not len(val_f.labels):
        raise data.DatasetError(f"no decodable validation photos in {dataset.root}: add photos (at least two "
                                f"per class when there is no Validation folder)")
    val_x = _mirrored(val_f.vectors, len(eval_views))  # [photos, views, D]
    val_y = val_f.labels[::len(both)]
    val_paths = val_f.paths[::len(both)]
    not_mine = data.not_mine_files(dataset.root)
    nm = views_of(not_mine, [0] * len(not_mine), (recipe.CENTRE, recipe.mirror(recipe.CENTRE)), "not_mine crops")
    centres = np.concatenate([train_f.vectors[::n_views], val_f.vectors[::len(both)]])  # a bank photo's matches it
    checked, other_rows, own = negatives.without_mine(centres, others[:0] if others_checked else others, other_rows,
                                                      other_photos, nm.vectors)
    others = others if others_checked else checked
    if own:
        _log(f"note: {own} crops of other animals are of your own photos (the bank holds Oxford-IIIT Pet photos): "
             f"left out of them, so those cats are yours")
    others = np.concatenate([others, recipe.unit(recipe.gate_part(nm.vectors))]) if len(nm.vectors) else others
    skipped = tuple(dict.fromkeys(train_f.skipped + turned_f.skipped + val_f.skipped + nm.skipped))
    for path, why in skipped:
        _log(f"skipped {path}: {why}")
    stages.lap("features")

    n_classes = len(dataset.classes)
    other = None
    if dense.units > n_classes:
        other = np.concatenate([np.zeros((0, val_x.shape[-1]), np.float32) if other_rows is None else other_rows,
                                nm.vectors.reshape(-1, val_x.shape[-1])])
    started = time.perf_counter()
    kernel, bias, curves = _fit_head(train_f.vectors, turned_f.vectors, train_labels, cfg, n_classes, other,
                                     val=(val_x[:, 0], val_y))
    dense.set_weights([kernel, bias])
    head = fit.PhaseHistory("head", *(tuple(curves[k]) for k in ("loss", "accuracy", "val_loss", "val_accuracy")),
                            len(curves["loss"]) - 1, time.perf_counter() - started)
    stages.lap("head")
    group_of = photo_groups(train_f.vectors, kept, train_labels, n_views)
    gate = _fit_gate(train_f.vectors, turned_f.vectors, group_of, train_labels, n_views, plan, cfg, others, n_classes)
    stages.lap("gate")

    def judge(x, gate=gate):
        return gate.shrink(recipe.softmax(x @ kernel + bias), x, n_classes)

    threshold_value = recipe.unknown_threshold(len(dataset.classes))
    val_probs = judge(val_x[:, 0])
    val_scores = evaluate.score(val_probs, val_y, dataset.classes)
    correct = val_probs.argmax(1) == val_y
    threshold = evaluate.Threshold(
        threshold_value, f"halfway from uniform (1/{len(dataset.classes)}) to certain: a confident crop reads "
                         f"unknown exactly when its open-set score is below the gate's cut of the class the "
                         f"head names (familiarity.cut and familiarity.how in model.json)",
        float(np.mean(val_probs[correct].max(1) >= threshold_value)) if correct.any() else 0.0)
    named = float(np.mean(correct & (val_probs.max(1) >= threshold_value)))
    view_scores = None
    if plan.val_crops:
        crops_x = val_x[:, 1:].reshape(-1, val_x.shape[-1])
        crops_y = np.repeat(val_y, len(eval_views) - 1)
        view_scores = evaluate.score(judge(crops_x), crops_y, dataset.classes)
    accepted, reason = accept(val_x[:, 0], val_y, val_paths) if accept else (True, "")
    learnt_labels, refit_computed = train_labels, 0
    # The validation photos only score the recipe: the model then learns them too (bench/household.py: a cat
    # of 4-26 photos loses a fifth of them to validation otherwise; bench/quality.py --versus-without-validation:
    # other days of a cat whose training photos are one afternoon). A split made here always; a Validation
    # folder unless train.learn_validation is false (the user keeps it to judge with).
    refit = dataset.layout == "classes" or learn_validation
    if refit:
        val_rows = views_of(val_paths, val_y, plan.head_views, "validation crops, for the model")
        val_turned = views_of(val_paths, val_y, plan.turned, "turned validation crops, for the model")
        learnt_labels = np.concatenate([train_labels, val_rows.labels[::n_views]])
        rows = np.concatenate([train_f.vectors, val_rows.vectors])
        turned = np.concatenate([turned_f.vectors, val_turned.vectors])
        kernel, bias, _ = _fit_head(rows, turned, learnt_labels, cfg, n_classes, other, start=(kernel, bias))
        dense.set_weights([kernel, bias])
        group_of = photo_groups(rows, kept + tuple(dict.fromkeys(val_rows.paths)), learnt_labels, n_views)
        gate = _fit_gate(rows, turned, group_of, learnt_labels, n_views, plan, cfg, others, n_classes)
        refit_computed = val_rows.computed + val_turned.computed
        stages.lap("refit")
    test_scores = None
    if dataset.test is not None and len(dataset.test):
        test_f = views_of(dataset.test.paths, dataset.test.labels, both[:1] + both[len(eval_views):][:1], "test")
        for path, why in test_f.skipped:  # listed like the other splits' (metrics.json's skipped, the count)
            if (path, why) not in skipped:
                _log(f"skipped {path}: {why}")
        skipped = tuple(dict.fromkeys(skipped + test_f.skipped))
        if len(test_f.labels):
            test_scores = evaluate.score(judge(_mirrored(test_f.vectors, 1)[:, 0]), test_f.labels[::2],
                                         dataset.classes)
            _log("test " + test_scores.lines()[0])
    learnt = len(learnt_labels)
    counts = np.bincount(learnt_labels, minlength=len(dataset.classes))
    warnings = (left_out(dataset) + outside_classes(dataset) + thin(dataset.classes, counts)
                + few_moments(dataset.classes, learnt_labels, group_of)
                + unmeasured(dataset, val_y) + in_two_classes(train_f.paths[::n_views] + val_paths,
                                                              np.concatenate([train_labels, val_y]), dataset.classes))
    copies = _near_training(val_x[:, 0], train_f.vectors[::n_views])
    if copies:
        warnings += (f"{copies} of {len(val_y)} validation photos are near-duplicates of training photos (the "
                     f"same burst or scene): the validation figures overstate what new photos will get",)
    for w in warnings:
        _log("warning: " + w)
    if refit:
        _log(f"validation: scored by the recipe fitted without the {len(val_y)} validation photos; the model "
             f"then learnt from all {learnt} photos")
    _log("validation " + "\n".join(val_scores.lines()))
    _log(f"validation: centre squares named right (unknown counts as wrong) {named:.3f}, one view each (the app "
         f"takes the surest of regions.zooms views: {bundled.trainer_command('evaluate')} scores so); unknown cuts "
         f"{gate.to_json()['cut']}")
    if view_scores is not None:
        _log(f"validation crops ({len(eval_views) - 1} per photo): accuracy {view_scores.accuracy:.3f}")
    stages.lap("evaluate")

    out = Path(out) if accepted else refused_out(out)
    if other is not None:
        gate = replace(gate, how=f"{gate.how}, times 1 - the head's probability of another animal (its last class, "
                                 f"learnt from {len(other)} crops of other animals and not_mine crops)")
    model = familiar.gated(classifier(extractor, drop, dense), gate, n_classes)
    tflite = None
    if reuse is not None:  # the live retrain: the current .tflite with the new head and gate
        shown = val_paths[:CHECK_PHOTOS]
        pixels = np.stack([data.crop_view(data.load_photo(p, side), recipe.CENTRE, size) for p in shown])
        tflite = _patched(reuse, tflite_edit.HeadParams(kernel, bias, gate.refs, gate.others, gate.cut, gate.floor),
                          pixels, judge(val_x[:len(shown), 0], tflite_edit.as_stored(gate)))
    patched = tflite is not None
    if not patched:
        tflite = _gate_in_int8(tflite_bytes(model), gate)
    stages.lap("tflite")
    info = ModelInfo(
        path=out, classes=dataset.classes, input_size=(size, size), unknown_threshold=threshold_value,
        familiarity=gate.to_json(), **(info_extra or {}),
        metrics={"val_accuracy": round(val_scores.accuracy, 4),
                 "test_accuracy": round(test_scores.accuracy, 4) if test_scores else None,
                 "train_photos": len(kept), "val_photos": len(val_y), "learnt_photos": learnt,
                 **(extra or {}).get("metrics", {})})
    report_extra = {
        "dataset": {"root": str(dataset.root), "layout": dataset.layout, "classes": list(dataset.classes),
                    "train_photos": len(kept), "val_photos": len(val_y), "learnt_photos": learnt,
                    "not_mine_crops": len(nm.paths) // 2,
                    "other_animals_in_head": 0 if other is None else len(other),
                    "train_photos_per_class": dict(zip(dataset.classes,
                                                       map(int, np.bincount(train_labels, minlength=len(counts))))),
                    "learnt_photos_per_class": dict(zip(dataset.classes, map(int, counts)))},
        "warnings": list(warnings),
        "selected_on": plan.selected_on,
        "validation_named_right": round(named, 4),
        "validation_learnt": refit,
        # What a later retrain compares with, photo by photo, once these photos are learnt (train/retrain.py).
        **({report.VALIDATION_RIGHT: {relative(p, dataset.root): bool(c) for p, c in zip(val_paths, correct)}}
           if refit else {}),
        "skipped": [{"file": str(p), "why": w} for p, w in skipped],
        "config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
        "training_views": [v.name for v in plan.head_views], "reference_views": plan.ref_views,
        "turned_reference_views": [v.name for v in plan.turned],
        **{k: v for k, v in (extra or {}).items() if k != "metrics"}}
    if view_scores is not None:
        report_extra["validation_views"] = {"accuracy": round(view_scores.accuracy, 4),
                                            "n": int(sum(view_scores.support)),
                                            "views": [v.name for v in eval_views[1:]]}

    def write_report(folder: Path) -> None:
        report.write_metrics(folder / report.METRICS_FILE, val_scores, threshold, tuple(before) + (head,),
                             test_scores, {**report_extra, "seconds": stages.seconds})
        report.plot_confusion(folder / report.CONFUSION_FILE, val_scores)
        report.plot_curves(folder / report.CURVES_FILE, tuple(before) + (head,))
        wrong = np.flatnonzero(val_probs.argmax(1) != val_y)[:report.MAX_MISCLASSIFIED]
        pixels = np.stack([data.load_image(val_paths[i], size) for i in wrong]) if len(wrong) else \
            np.zeros((0, size, size, 3), np.uint8)
        report.plot_misclassified(folder / report.MISCLASSIFIED_FILE, pixels, val_y[wrong], val_probs[wrong],
                                  dataset.classes, [val_paths[i] for i in wrong])

    write_model_dir(model, info, out, write_report, tflite)
    stages.lap("export")
    computed = train_f.computed + turned_f.computed + val_f.computed + nm.computed + refit_computed
    return TrainResult(out, val_scores.accuracy, test_scores.accuracy if test_scores else None, threshold_value,
                       skipped, dict(stages.seconds), computed, accepted, reason, warnings, patched, named)


def train_model(data_dir: str | Path, out: str | Path, weights: str, cfg: TrainConfig,
                cache_dir: Path | None = None, bank_photos: Sequence[Path] | None = None) -> TrainResult:
    """Train on `data_dir` and write the model directory `out` (swapped in only when complete).

    `bank_photos`: photos of other animals for the head and the open-set gate in place of the shipped
    bank (train/negatives.py); bench/strangers.py passes them without the breeds it plays.
    """
    stages = Stages()
    dataset = data.find_images(data_dir, cfg.validation_fraction, cfg.seed)
    _log(f"dataset {dataset.root}: {len(dataset.classes)} classes ({', '.join(dataset.classes)}), "
         f"{len(dataset.train)} training and {len(dataset.validation)} validation files")
    fit.seed_everything(cfg.seed)
    backbone = Backbone(weights, cfg.image_size, cfg.alpha)
    network = build(backbone, len(dataset.classes) + 1, cfg.dropout)  # the last: other animals (recipe.shrink)
    progress = fit.Progress()
    stages.lap("build")
    before = []
    if cfg.fine_tune_epochs > 0:
        before.append(fit.fine_tune(network, dataset, cfg, progress))
        stages.lap("fine_tune")
    identity = features.identity(network.features)
    cache = features.FeatureCache(cache_dir or features.default_cache_dir(), identity)
    embed = features.on_litert(network.features, cfg.batch_size)
    # The bank's crops are the head's other animals, and their average-pooled part the gate's.
    bank_crops = negatives.crops(negatives.photos() if bank_photos is None else bank_photos, network.features, cache,
                                 cfg.batch_size, progress.counter("other animals"), embed)
    if bank_photos is None:
        bank = negatives.for_extractor(network.features, identity, bank_crops, cfg.reference_merge, _log)
    else:
        bank = negatives.gate_rows(bank_crops.vectors, cfg.reference_merge)
    other_rows = bank_crops.vectors
    drop, dense = network.model.get_layer("dropout"), network.model.get_layer("probs")
    return finish(network.features, drop, dense, dataset, cfg, Path(out), Recipe.full(cfg), cache, bank, stages,
                  before=before, info_extra={"backbone": {**backbone.describe(), "features": identity}},
                  progress=progress.counter, embed=embed, other_rows=other_rows, other_photos=bank_crops.paths,
                  learn_validation=cfg.learn_validation)
