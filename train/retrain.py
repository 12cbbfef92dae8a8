"""Head-only retrain of an existing model on a grown dataset: what the live app runs in the background.

The current model's own feature extractor (its base, fine-tuned or not) computes the
features, so only the softmax head and the open-set gate change; the feature cache is
keyed by that extractor (features.identity), the same key `python -m train` used, so
photos it already saw cost no backbone time, and only new crops run through the
backbone. The base runs on LiteRT, cut out of the current model.tflite, and the new
model.tflite is the current one with the new head and gate written in (train/tflite_edit.py):
no TensorFlow graph, no conversion; either falls back to TensorFlow when the check against
the Keras side fails. The head learns from the full recipe's crops (`live_recipe`), so a
retrain on the photos the current model learnt from gives back its head. The other animals of
the gate (the bundled bank and earlier not_mine crops) come from the current model itself; new
not_mine crops are added. A head that knows other animals (one class more: pipeline.finish) learns
them again from the bank's photos (train/bank/, through the feature cache) and every not_mine crop.
The head may grow when the dataset has new class folders (then model.tflite is converted anew).

The new model is accepted only when its validation accuracy is not worse than the
current model's on the same validation photos by more than `max_drop`, or by one photo where
that is more (for a model that learnt its validation photos, what it scored on them at its
training, on the photos that are validation photos both then and now); a refused model is still
written (as `<out>-refused`) so the user can look at it. Like `python -m train`, a retrain on a
split it made (no Validation folder) is scored on it, then learns every photo; so does a retrain of a
model that learnt its Validation folder (`train.learn_validation`), whatever the setting is now.

`python -m train.retrain --model DIR --data DIR --out DIR` prints one JSON object per line
on stdout (knyang_cam.events: progress, then done or error) for the app to read; a progress
event ends each stage with its seconds, and "done" lists them all ("stages").
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from knyang_cam import bundled, events, extras, model_dir, model_out, paths
from knyang_cam import config as config_mod
from knyang_cam.config import TrainConfig
from knyang_cam.errors import OneLineParser, UserError
from knyang_cam.model_dir import ModelError

from . import data, familiar, features, negatives, recipe, report, tflite_edit
from .model import EXTRACTOR_NAME, HEAD_NAME, MIRROR_MEAN_NAME, head_layers
from .pipeline import CHECK_ATOL, CHECK_PHOTOS, Recipe, Reuse, Stages, finish, refused_out, relative

Report = Callable[[dict], None]
# Above this TensorFlow's thread pools hang on start-up (a negative count aborts it): no CPU has more.
MAX_THREADS = 256


def live_recipe(cfg: TrainConfig) -> Recipe:
    """The full recipe's head and gate on the same crops (Recipe.full), without the validation crops,
    which only the report reads.

    Not fewer crops: the first 13 of the then 27 cost about a point on grouped folds (bench/quality.py
    --versus-views 13: clip frames -0.008 +- 0.006), but on the bundled model's own 50 Validation
    photos the retrained head fell from 0.98 to 0.94, and the accuracy check refused every retrain
    of it: a user who pressed `x` on a look-alike and then `t` got nothing. The price is time:
    more than twice the head rows, and every crop of each new photo through the backbone, not 13.
    """
    full = Recipe.full(cfg)
    return replace(full, val_crops=False,
                   selected_on=f"live retrain: the full recipe's head and gate ({len(full.head_views)} crops per "
                               f"photo, {full.ref_views} of them references); {full.selected_on}")


@dataclass(frozen=True)
class RetrainResult:
    """How a retrain ended (the `done` event): the directory written, accepted or why not, old/new accuracy, timings."""

    out: str  # the model directory written (ends in -refused when not accepted)
    accepted: bool
    reason: str
    classes: tuple[str, ...]
    old_accuracy: float  # the current model on the validation photos compared (new classes count as misses)
    new_accuracy: float  # the new model on the same photos
    features_computed: int  # crops that ran through the backbone; the rest came from the cache
    seconds: float
    stages: dict  # seconds per stage
    litert_features: bool  # the backbone ran on LiteRT (cut out of the current model.tflite), not TensorFlow
    tflite_patched: bool  # model.tflite is the current one patched, not a new conversion


def _old_accuracy(old_dense, old_classes: Sequence[str], vectors: np.ndarray, labels: np.ndarray,
                  classes: Sequence[str]) -> float:
    """Accuracy of the current model's head on the same validation features, by class name."""
    probs = np.asarray(old_dense(vectors))[:, :len(old_classes)]
    predicted = [old_classes[i] for i in probs.argmax(axis=1)]
    return float(np.mean([p == classes[t] for p, t in zip(predicted, labels)])) if len(labels) else 0.0


def _litert_path(info, model, old_dense, others: np.ndarray, dataset: data.Dataset,
                 cfg: TrainConfig) -> tuple[Reuse | None, tflite_edit.LiteRTFeatures | None]:
    """The current model.tflite to patch (or None) and its base cut out of it on LiteRT (or None: TensorFlow).

    Checked end to end before use: the cut-out base with the current head and gate in numpy
    must give what model.tflite gives on a few photos, so the old values the patch looks for
    are the ones in the file.
    """
    fam = info.familiarity or {}
    if fam.get("softness") != recipe.SOFTNESS or "other_animal_weight" not in fam or \
            fam.get("neighbours", 1) != recipe.NEIGHBOURS:
        return None, None  # a model without the gate this code builds: nothing to check the cut-out base on
    kernel, bias = (np.asarray(w, np.float32) for w in old_dense.get_weights())
    try:  # model.json is a text file: an edited or damaged entry costs the patch, not the retrain
        weight, cut, floor = float(fam["other_animal_weight"]), np.asarray(fam["cut"], np.float32), float(fam["floor"])
    except (KeyError, TypeError, ValueError):
        cut = None
    if cut is None or cut.shape not in ((), (len(info.classes),)):
        print("note: features in TensorFlow and a full conversion: model.json's familiarity has no usable cut "
              "or floor", file=sys.stderr)
        return None, None
    gate = familiar.Gate(familiar.refs_of(model), others, weight, cut, floor, "")
    old = tflite_edit.HeadParams(kernel, bias, gate.refs, gate.others, gate.cut, gate.floor)
    size = info.input_size[0]
    photos = (dataset.validation.paths + dataset.train.paths)[:CHECK_PHOTOS]
    try:
        current = info.tflite_path.read_bytes()
        embed = tflite_edit.LiteRTFeatures(tflite_edit.feature_extractor(current, kernel.shape[0]),
                                           os.cpu_count() or 2, cfg.batch_size)
        crops = np.stack([data.crop_view(data.load_photo(p, features.PHOTO_SCALE * size), recipe.CENTRE, size)
                          for p in photos])
        pooled = embed(np.concatenate([crops, crops[:, :, ::-1]])).reshape(2, len(crops), -1).mean(axis=0)
        expected = tflite_edit.run(current, crops)
    except (OSError, tflite_edit.GraphError, *data.DECODE_ERRORS) as e:
        print(f"note: features in TensorFlow and a full conversion: {e}", file=sys.stderr)
        return None, None
    # The file's gate rows are int8 (tflite_edit.stored); a model from before them differs by as little.
    probs = tflite_edit.as_stored(gate).shrink(recipe.softmax(pooled @ kernel + bias), pooled, len(info.classes))
    worst = float(np.abs(probs - expected).max())
    if worst > CHECK_ATOL:
        print(f"note: the current model.tflite differs from its model.keras by {worst:.4f}: features in "
              f"TensorFlow and a full conversion", file=sys.stderr)
        return None, None
    # A new weight of the other animals changes the gate's arithmetic, not only its tensors: convert.
    same_gate = fam["other_animal_weight"] == cfg.other_animal_weight
    return (Reuse(current, old) if same_gate else None), embed


def retrain(current: str | Path, data_dir: str | Path, out: str | Path, cfg: TrainConfig,
            max_drop: float = 0.02, cache_dir: Path | None = None,
            emit: Report = lambda event: None, bank_photos: Sequence[Path] | None = None) -> RetrainResult:
    """Retrain the head and gate of the model `current` on `data_dir`; write `out` (or `<out>-refused`).

    `bank_photos`: as train_model's, the photos of other animals the head learns again (a model trained on
    another bank than the shipped one: bench/strangers.py).
    """
    start = time.perf_counter()
    stages = Stages(lambda name, s: emit(events.progress(name, f"{name} done ({s:.1f} s)")))
    info = model_dir.read(current, need=(model_dir.KERAS_FILE,))
    # Before find_images' own checks: a dataset of one of the model's cats would be refused as a household of
    # one, which misleads here (the retrain was pointed at the wrong dataset). One with none of the model's
    # cats (not_mine crops alone) is left to find_images' surer message.
    present = data.class_names(data_dir) if Path(data_dir).is_dir() else ()
    if present and (forgotten := [c for c in info.classes if c not in present]):
        raise UserError(f"{Path(data_dir)} has no photos of {', '.join(forgotten)}, which the current model knows: "
                        f"a retrain on it would forget them; set app.dataset_root to the dataset the model was "
                        f"trained on (README: Teach it live), or train a new model with {bundled.trainer_command()}")
    dataset = data.find_images(data_dir, cfg.validation_fraction, cfg.seed)
    import keras

    model = keras.models.load_model(info.keras_path, compile=False)
    try:
        extractor = model.get_layer(EXTRACTOR_NAME)
        old_dense = model.get_layer(HEAD_NAME)
        model.get_layer(MIRROR_MEAN_NAME)
    except ValueError:
        raise ModelError(f"{info.keras_path} has no '{EXTRACTOR_NAME}'/'{HEAD_NAME}'/'{MIRROR_MEAN_NAME}' layers, "
                         f"so its head cannot be retrained alone: {model_dir.rebuild_hint(info.path)}") from None
    others = familiar.others_of(model)
    reuse, embed = _litert_path(info, model, old_dense, others, dataset, cfg)
    stages.lap("load")

    emit(events.progress("features", f"features: {len(dataset.train) + len(dataset.validation)} photos, "
                                     f"{len(dataset.classes)} classes"))
    cache = features.FeatureCache(cache_dir or features.default_cache_dir(), features.identity(extractor))

    def progress(what):
        def show(done, total):
            emit(events.progress("features", f"features ({what}): {done}/{total} new"))
        return show

    compared = {"old": 0.0, "new": 0.0}
    # A model that learnt its validation photos (pipeline.finish) would score them as memories: it is
    # held to what it scored at its training, fitted without them as the new head is here, on the photos
    # that are validation photos both then and now (added photos move few: data._split_by_seed).
    metrics = info.metrics or {}
    learnt_val = metrics.get("learnt_photos", 0) > metrics.get("train_photos", 0) and "val_accuracy" in metrics
    # An older model, or its report removed: {}, compared on its figure alone.
    earlier = report.validation_right(info.path) if learnt_val else {}

    def accept(val_x: np.ndarray, val_y: np.ndarray, val_paths: Sequence[str]) -> tuple[bool, str]:
        right = np.asarray(new_dense(val_x))[:, :len(dataset.classes)].argmax(1) == val_y
        names = [relative(p, dataset.root) for p in val_paths]
        same = [i for i, name in enumerate(names) if name in earlier]
        if same:
            old = float(np.mean([earlier[names[i]] for i in same]))
            right, where = right[same], f" on the same {len(same)} photos (at its training)"
        elif learnt_val:
            old, where = float(metrics["val_accuracy"]), " (at its training, on other photos)"
        else:
            old, where = _old_accuracy(old_dense, info.classes, val_x, val_y, dataset.classes), ""
        compared.update(old=old, new=float(np.mean(right)))
        # One photo of a handful is a large share: losing one is noise, not a worse model.
        allowed = max(max_drop, 1 / len(right))
        ok = compared["new"] >= old - allowed - 1e-9
        return ok, (f"validation accuracy {compared['new']:.3f} vs current {old:.3f}{where} "
                    f"({'accepted' if ok else f'refused: worse by more than {allowed:.3f}'})")

    # A model whose head knows other animals (one unit more than its cats: pipeline.finish) keeps them.
    other_rows = other_photos = None
    if old_dense.units > len(info.classes):
        photos = negatives.photos() if bank_photos is None else bank_photos
        bank_crops = negatives.crops(photos, extractor, cache, cfg.batch_size, progress("other animals, for the head"),
                                     embed)
        other_rows, other_photos = bank_crops.vectors, bank_crops.paths
    drop, new_dense = head_layers(len(dataset.classes) + (other_rows is not None), cfg.dropout)
    new_dense.build((None, extractor.output_shape[-1]))
    result = finish(extractor, drop, new_dense, dataset, cfg, Path(out), live_recipe(cfg), cache, others, stages,
                    accept=accept, progress=progress, embed=embed, reuse=reuse, other_rows=other_rows,
                    other_photos=other_photos, others_checked=True, learn_validation=learnt_val,
                    extra={"retrain": {"from": str(info.path), "data": str(dataset.root)}},
                    info_extra={"backbone": {**info.backbone, "retrained_from": str(info.path)}})
    emit(events.progress("export", f"export: {result.reason}"))
    return RetrainResult(str(result.out), result.accepted, result.reason, dataset.classes, round(compared["old"], 4),
                         round(compared["new"], 4), result.features_computed,
                         round(time.perf_counter() - start, 2), result.seconds, embed is not None,
                         result.tflite_patched)


def _threads(text: str) -> int:
    """--threads: 0 (all cores) to MAX_THREADS, or argparse's one-line error."""
    try:
        n = int(text)
    except ValueError:
        n = -1
    if not 0 <= n <= MAX_THREADS:
        raise argparse.ArgumentTypeError(f"give a whole number from 0 (all cores) to {MAX_THREADS}, not {text!r}")
    return n


def _max_drop(text: str) -> float:
    """--max-drop: an accuracy from 0 to 1 (NaN and negatives would refuse every model), or argparse's error."""
    try:
        x = float(text)
    except ValueError:
        x = math.nan
    if not 0 <= x <= 1:
        raise argparse.ArgumentTypeError(f"give an accuracy drop from 0 to 1, not {text!r}")
    return x


def build_parser() -> argparse.ArgumentParser:
    """The `python -m train.retrain` parser; a bad argument is one `error:` line on stderr, exit status 2."""
    from .__main__ import prog_name

    p = OneLineParser(prog=prog_name("retrain"),
                      description="Retrain only the head of MODEL on DATA (JSON lines on stdout).")
    p.add_argument("--model", required=True, help="current model directory")
    p.add_argument("--data", required=True, help="dataset folder (both layouts of `python -m train`)")
    p.add_argument("--out", required=True, help="new model directory (refused models get -refused)")
    p.add_argument("--config", help="config.yaml (its train: section is used)")
    p.add_argument("--max-drop", type=_max_drop, default=0.02,
                   help="refuse the new model if its validation accuracy is lower by more than this "
                        "(0..1) and by more than one photo")
    p.add_argument("--cache", help="feature cache folder (default: train.feature_cache, else "
                                   "~/.cache/knyang-cam/features)")
    p.add_argument("--threads", type=_threads, default=0,
                   help=f"TensorFlow CPU threads, up to {MAX_THREADS} (0: all; the app passes 0 and lowers the "
                        f"priority instead)")
    return p


def check_outputs(model: str, data_dir: str, out: str, config: str | None, cache_flag: str,
                  cache: Path | None) -> None:
    """Every path the retrain writes, checked before any work: --out and its -refused twin are model
    directories apart from --model, --data and --config; the feature cache is in none of them."""
    inputs = [paths.Input("--model", Path(model), folder=True)]
    if config:
        inputs.append(paths.Input("--config", Path(config)))
    for target in (out, refused_out(out)):
        model_out.check_model_out(target, data=data_dir, inputs=inputs)
    paths.check_cache(cache_flag, cache, (("--data", data_dir), ("--model", model), ("--out", out),
                                          ("--out's twin", refused_out(out))))


def main(argv: Sequence[str] | None = None) -> int:
    """The `python -m train.retrain` entry point: JSON events on stdout; 0 accepted, 1 refused, 2 error event,
    128 + signal when interrupted (Ctrl-C, SIGTERM)."""
    from .__main__ import until_interrupted

    args = build_parser().parse_args(argv)

    def say(why: str) -> None:  # one error event for the app, one line for a person
        message = f"{why}; --model is unchanged"
        events.write(events.error(message))
        print(f"error: {message}", file=sys.stderr)

    return until_interrupted(lambda: _run(args), say)


def _run(args: argparse.Namespace) -> int:
    """Check the outputs, retrain, print the events; 0 accepted, 1 refused, 2 error event."""
    try:
        extras.require_tensorflow("the live retrain")
        cfg = config_mod.load(args.config).train
        cache_flag, cache = ("--cache", args.cache) if args.cache else ("train.feature_cache", cfg.feature_cache)
        cache_dir = Path(os.path.expanduser(cache)) if cache else None
        check_outputs(args.model, args.data, args.out, args.config, cache_flag, cache_dir)
        extras.quiet_tensorflow()
        if args.threads:
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(args.threads)
            tf.config.threading.set_inter_op_parallelism_threads(args.threads)
        result = retrain(args.model, args.data, args.out, cfg, args.max_drop,
                         cache_dir, events.write)
    except (UserError, OSError) as e:  # OSError: a folder it cannot write (a read-only models_dir), a full disk
        message = str(e) if isinstance(e, UserError) else f"cannot use {e.filename or 'a file'}: {e.strerror or e}"
        events.write(events.error(message))
        print(f"error: {message}", file=sys.stderr)
        return 2
    events.write(events.done(**asdict(result)))
    return 0 if result.accepted else 1


if __name__ == "__main__":
    sys.exit(main())
