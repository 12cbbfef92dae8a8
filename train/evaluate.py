"""Accuracy, per-class precision/recall and the confusion matrix of a model on a labelled set.

`python -m train.evaluate --model DIR --data DIR` scores a model directory on any
folder-per-class set (ROOT/<class>/* or, for a split dataset, its Validation or
--split of choice), prints the results and writes them as JSON. Training uses the
same `score` for report/metrics.json, so both say the same thing. Each photo is read
as the app reads it (`app_probs`: its centre square in regions.zooms views, the surest
counting), so "named right" and "read unknown" are what the app would show.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from knyang_cam.errors import OneLineParser, UserError, exit_status


@dataclass(frozen=True)
class Scores:
    """Accuracy, per-class precision/recall/support in `classes` order, and the confusion counts of a labelled set."""

    classes: tuple[str, ...]
    accuracy: float
    precision: tuple[float, ...]
    recall: tuple[float, ...]
    support: tuple[int, ...]
    confusion: tuple[tuple[int, ...], ...]  # rows: true class, columns: predicted class

    def to_json(self) -> dict:
        """The scores as metrics JSON: accuracy, n, per-class figures (rounded to 4 places; null for a class with
        no photo here, as `lines` shows "-"), confusion matrix."""
        return {
            "accuracy": round(self.accuracy, 4),
            "n": int(sum(self.support)),
            # A cat without validation photos got recall 0.0 here, "always wrong", where the table said "-".
            "per_class": {c: {"precision": round(p, 4) if s else None, "recall": round(r, 4) if s else None,
                              "support": s}
                          for c, p, r, s in zip(self.classes, self.precision, self.recall, self.support)},
            "confusion_matrix": {"rows": "true class", "columns": "predicted class",
                                 "classes": list(self.classes), "counts": [list(r) for r in self.confusion]},
        }

    def lines(self) -> list[str]:
        """The scores as terminal lines: the accuracy and photo count, then one row per class."""
        width = max(_columns(c) for c in ("class", *self.classes))  # the title may be the widest
        out = [f"accuracy {self.accuracy:.4f} on {sum(self.support)} photos",
               f"{_padded('class', width)}  precision  recall  photos"]
        # A class with no photo here is not scored: its zeros would read as "always wrong".
        out += [f"{_padded(c, width)}  {p:9.3f}  {r:6.3f}  {s:6d}" if s
                else f"{_padded(c, width)}  {'-':>9}  {'-':>6}  {s:6d}"
                for c, p, r, s in zip(self.classes, self.precision, self.recall, self.support)]
        return out


def _columns(text: str) -> int:
    """The terminal columns `text` takes: a wide letter (Hangul, kanji) takes two and a combining accent (a
    macOS folder name's decomposed ë) none, so len() misaligned such a class's row."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
               for c in text)


def _padded(text: str, width: int) -> str:
    """`text` with spaces after it to fill `width` terminal columns."""
    return text + " " * max(0, width - _columns(text))


def score(probs: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> Scores:
    """Scores of the argmax of `probs` [N, C] against int `labels` [N]; 0 where a class was never predicted or seen."""
    n = len(classes)
    pred = probs.argmax(axis=1)
    confusion = np.zeros((n, n), np.int64)
    np.add.at(confusion, (labels, pred), 1)
    predicted, actual = confusion.sum(axis=0), confusion.sum(axis=1)
    diag = np.diag(confusion).astype(np.float64)
    precision = np.divide(diag, predicted, out=np.zeros(n), where=predicted > 0)
    recall = np.divide(diag, actual, out=np.zeros(n), where=actual > 0)
    return Scores(tuple(classes), float(diag.sum() / max(len(labels), 1)),
                  tuple(map(float, precision)), tuple(map(float, recall)), tuple(map(int, actual)),
                  tuple(tuple(map(int, row)) for row in confusion))


@dataclass(frozen=True)
class Threshold:
    """The unknown threshold: its `value`, how it was chosen, the share of correct validation answers it keeps."""

    value: float
    how: str
    kept_correct: float  # share of correct validation answers at or above it

    def to_json(self) -> dict:
        """The `unknown_threshold` entry of metrics.json (kept_correct rounded to 4 places)."""
        return {"value": self.value, "how": self.how, "kept_correct": round(self.kept_correct, 4)}


def build_parser() -> argparse.ArgumentParser:
    """The `python -m train.evaluate` parser; a bad argument is one `error:` line on stderr, exit status 2."""
    from .__main__ import prog_name

    p = OneLineParser(prog=prog_name("evaluate"),
                                description="Score a model directory on a folder-per-class photo set.")
    p.add_argument("--model", required=True, help="model directory (model.keras + model.json)")
    p.add_argument("--data",
                   help="ROOT/<class>/* photos, or a split dataset ROOT/{Train,Validation,Test}/<class>/*")
    p.add_argument("--unknown", metavar="DIR",
                   help="photos of cats the model does not know (any sub-folders): how many read unknown")
    p.add_argument("--verbose", action="store_true", help="keep TensorFlow's own start-up log")
    p.add_argument("--split", default=None, choices=("train", "validation", "test"),
                   help="which split of a split dataset to score (default: test if present, else validation)")
    p.add_argument("--json", default=None,
                   help="where to write the metrics JSON (default: <model>/report/eval-<data folder>.json)")
    return p


def _labelled_set(root: Path, classes: Sequence[str], split: str | None):
    from .data import SPLIT_NAMES, DatasetError, Split, class_files, split_folder

    if not os.path.isdir(root):  # not Path.is_dir, which raises OSError for a name over 255 bytes
        raise DatasetError(f"dataset folder not found: {root}")
    folder = root
    # Held-out photos alone (ROOT/Test/<class>/, no Train beside them) are a split dataset too: Test read as a cat
    # named "Test" said the model does not know it.
    if split is not None or any(split_folder(root, name) is not None for name in SPLIT_NAMES.values()):
        names = [split] if split else ["test", "validation"]
        found = [d for d in (split_folder(root, SPLIT_NAMES[n]) for n in names) if d is not None]
        if not found:
            raise DatasetError(f"no {' or '.join(SPLIT_NAMES[n] for n in names)} folder in {root}")
        folder = found[0]
    by_class = class_files(folder)
    unknown = sorted(c for c, files in by_class.items() if files and c not in classes)
    if unknown:
        raise DatasetError(f"{folder} has classes the model does not know: {', '.join(unknown)} "
                           f"(model classes: {', '.join(classes)})")
    paths, labels = [], []
    for i, c in enumerate(classes):
        paths += by_class.get(c, [])
        labels += [i] * len(by_class.get(c, []))
    if not paths:
        raise DatasetError(f"no photos of the model's classes in {folder}")
    return folder, Split(tuple(paths), tuple(labels))


def main(argv: Sequence[str] | None = None) -> int:
    """The `python -m train.evaluate` entry point: score, print, write the JSON; 0, 2 bad input, 1 write failed."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not (args.data or args.unknown):
        parser.error("give --data DIR, --unknown DIR, or both")
    from knyang_cam.errors import survive_broken_pipe

    return survive_broken_pipe(lambda: exit_status(lambda: _run(args)))


def score_strangers(probs: np.ndarray, threshold: float, classes: Sequence[str]) -> dict:
    """How photos of cats outside the model read: the share under the unknown threshold, and
    which names the others got."""
    top = probs.max(axis=1)
    named = probs.argmax(axis=1)[top >= threshold]
    return {"n": int(len(probs)), "unknown": int((top < threshold).sum()),
            "unknown_share": round(float((top < threshold).mean()) if len(probs) else 0.0, 4),
            "threshold": threshold,
            "named_as": {classes[i]: int((named == i).sum()) for i in range(len(classes)) if (named == i).any()}}


def _app_factors() -> list[float]:
    """The app's default views of a region, as sides relative to it (regions.zoom_factors: train imports
    only the app's contract modules, so the one line is repeated here)."""
    from knyang_cam.config import RegionsConfig

    cfg = RegionsConfig()
    return [cfg.zoom_step ** k for k in range(cfg.zooms)]


def decode_for_app(split, info):
    """`split` decoded with each photo kept whole, large enough for the closest of the app's views."""
    from .data import decode_split

    side = int(np.ceil(info.input_size[0] / min(_app_factors())))
    return decode_split(split, info.classes, info.input_size[0], photo_side=side)


def app_probs(model, photos, size: int) -> np.ndarray:
    """[N, C] probabilities of whole `photos` as the app reads a photo: its centre square in the default
    regions.zooms views, the surest one counting (as knyang_cam.regions.surest). One centre square alone
    is stricter than the app: a model's unknown cut is set for the surest of the views."""
    from .data import View, crop_view
    from .model import infer

    factors = _app_factors()
    views = np.stack([crop_view(photo, View(f), size) for photo in photos for f in factors])
    probs = infer(model, views.astype(np.float32)).reshape(len(photos), len(factors), -1)
    return probs[np.arange(len(photos)), probs.max(axis=2).argmax(axis=1)]


def named_right(probs: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    """The share of photos whose top class is right and at least `threshold` (else the app says unknown)."""
    return float(np.mean((probs.argmax(axis=1) == labels) & (probs.max(axis=1) >= threshold))) if len(labels) else 0.0


def _stray_files(folder: Path) -> list[Path]:
    """Every file under --unknown `folder`, in any sub-folder (what does not decode is skipped later)."""
    from .data import _files

    if os.path.isfile(folder):
        raise UserError(f"--unknown {folder} is a file: give the folder that holds the photos of other cats")
    if not os.path.isdir(folder):
        raise UserError(f"--unknown folder not found: {folder}")
    paths = _files(folder)
    if not paths:
        raise UserError(f"--unknown folder {folder} holds no photos")
    return paths


def _strangers(folder: Path, paths: Sequence[Path], info, model) -> dict:
    from .data import Split

    images = decode_for_app(Split(tuple(paths), (0,) * len(paths)), info)
    for path, why in images.skipped:
        print(f"skipped {path}: {why}", file=sys.stderr)
    if not len(images.labels):
        raise UserError(f"no decodable photos in {folder}")
    result = score_strangers(app_probs(model, images.photos, info.input_size[0]), info.unknown_threshold,
                             info.classes)
    named = ", ".join(f"{c} {n}" for c, n in result["named_as"].items()) or "none"
    print(f"cats the model does not know: {result['unknown']} of {result['n']} photos read unknown "
          f"({result['unknown_share']:.0%}, threshold {info.unknown_threshold:.2f}, as the app reads a photo); "
          f"named: {named}")
    return result


def learnt_of(info, paths: Sequence[Path]) -> int:
    """How many of `paths` the model learnt after scoring them (its report's validation photos, when it learnt
    them: train.learn_validation), matched by their names within the dataset (Validation/<cat>/<file>)."""
    from .report import validation_right

    names = set(validation_right(info.path))  # {} for an older model, or its report removed: nothing to say
    return sum(any("/".join(Path(p).parts[-n:]) in names for n in (2, 3)) for p in paths)


def _load_keras(info):
    """The model directory's Keras network; a file that does not load is one line."""
    import zipfile

    import keras

    from knyang_cam import model_dir

    try:
        model = keras.models.load_model(info.keras_path, compile=False)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise model_dir.ModelError(f"cannot load {info.keras_path}: {first} "
                                   f"({model_dir.rebuild_hint(info.path)})") from None
    model_dir.check_network(info, info.keras_path, model.input_shape, model.output_shape)
    return model


def _check_json(out: Path, model: Path, folders: dict) -> None:
    """--json writes a file, in a place it can write, and replaces nothing it reads nor the model's
    training report: inside the model directory only report/eval-*.json is evaluate's."""
    from knyang_cam import model_dir, model_out, paths

    paths.check_file("--json", out)
    own = paths.resolved(out).parent == paths.resolved(model / model_dir.REPORT_DIR) and \
        fnmatch.fnmatch(out.name, model_out.EVAL_FILES)
    network = [model / name for name in (model_dir.KERAS_FILE, model_dir.TFLITE_FILE, model_dir.META_FILE)]
    if (paths.is_within(out, model) and not own) or any(paths.same_file(out, f) for f in network):
        raise UserError(f"--json {out} would replace an input file or the training report of --model {model}: "
                        f"there only {model_dir.REPORT_DIR}/{model_out.EVAL_FILES} is evaluate's; choose another name")
    for flag, folder in folders.items():
        if folder and paths.is_within(out, folder):
            raise UserError(f"--json {out} is inside the {flag} folder {folder}: write it somewhere else")
    paths.check_writable("--json", out)


def default_json(data: str | None, unknown: str | None) -> str:
    """`eval-<data folder>.json` (`eval-unknown-<folder>.json` for --unknown alone): the folder's own name for
    `.` too, without control characters, shortened to leave room for the temporary name written beside it."""
    from knyang_cam import model_dir, paths

    prefix = "eval-" if data else "eval-unknown-"
    name = "".join("_" if model_dir.is_control(ch) else ch for ch in Path(os.path.abspath(data or unknown)).name)
    room = paths.NAME_MAX - paths.BESIDE_EXTRA - len(prefix) - len(".json")
    return f"{prefix}{os.fsencode(name)[:room].decode('utf-8', 'ignore')}.json"


def _run(args) -> int:
    from knyang_cam import bundled, extras, model_dir
    from knyang_cam.atomic import write_text

    # Before the model is read: with the two folders swapped, the dataset's missing model.json was the message.
    for flag, folder in (("--data", args.data), ("--unknown", args.unknown)):
        if folder and model_dir.is_model_dir(Path(folder)):  # the two folders swapped, or --model given twice
            raise UserError(f"{flag} {folder} is a model directory (it holds {model_dir.META_FILE}): give a folder "
                            f"of photos, and the model as --model")
    # As the app's --model: `models/knyang` names the bundled model from any folder.
    info = model_dir.read(bundled.resolve(args.model), need=(model_dir.KERAS_FILE,))
    out = Path(args.json) if args.json else info.path / model_dir.REPORT_DIR / default_json(args.data, args.unknown)
    # Before the work, not after it, and before TensorFlow's import (seconds).
    _check_json(out, info.path, {"--data": args.data, "--unknown": args.unknown})
    # A mistyped --unknown was found only once --data was scored, the work lost.
    labelled = _labelled_set(Path(args.data), info.classes, args.split) if args.data else None
    strays = _stray_files(Path(args.unknown)) if args.unknown else None
    extras.require_tensorflow("evaluation")
    extras.quiet_tensorflow(args.verbose)
    result: dict = {"model": str(info.path)}
    model = None
    if labelled:
        folder, split = labelled
        images = decode_for_app(split, info)
        for path, why in images.skipped:
            print(f"skipped {path}: {why}", file=sys.stderr)
        if not len(images.labels):
            raise UserError(f"no decodable photos in {folder}")
        model = _load_keras(info)
        probs = app_probs(model, images.photos, info.input_size[0])
        scores = score(probs, images.labels, info.classes)
        named = named_right(probs, images.labels, info.unknown_threshold)
        print(f"named right {named:.4f} (unknown counts as wrong; each photo as the app reads it, the surest of "
              f"its views), the top class alone:")
        print("\n".join(scores.lines()))
        if learnt := learnt_of(info, split.paths):
            print(f"note: the model learnt {learnt} of these {len(split.paths)} photos once it had scored them "
                  f"(train.learn_validation): their figures here are memories; what it scored on them before is "
                  f"in {info.path / model_dir.REPORT_DIR}", file=sys.stderr)
        result.update({"data": str(folder), "named_right": round(named, 4), "learnt_photos_scored": learnt,
                       **scores.to_json(),
                       "skipped": [{"file": str(p), "why": w} for p, w in images.skipped]})
    if args.unknown:
        result["strangers"] = _strangers(Path(args.unknown), strays, info, model or _load_keras(info))
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
