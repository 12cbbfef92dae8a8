"""Accuracy, per-class precision/recall and the confusion matrix of a model on a labelled set.

`python -m train.evaluate --model DIR --data DIR` scores a model directory on any
folder-per-class set (ROOT/<class>/* or, for a split dataset, its Validation or
--split of choice), prints the results and writes them as JSON. Training uses the
same `score` for report/metrics.json, so both say the same thing.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from knyang_cam.errors import UserError, exit_status

@dataclass(frozen=True)
class Scores:
    classes: tuple[str, ...]
    accuracy: float
    precision: tuple[float, ...]
    recall: tuple[float, ...]
    support: tuple[int, ...]
    confusion: tuple[tuple[int, ...], ...]  # rows: true class, columns: predicted class

    def to_json(self) -> dict:
        return {
            "accuracy": round(self.accuracy, 4),
            "n": int(sum(self.support)),
            "per_class": {c: {"precision": round(p, 4), "recall": round(r, 4), "support": s}
                          for c, p, r, s in zip(self.classes, self.precision, self.recall, self.support)},
            "confusion_matrix": {"rows": "true class", "columns": "predicted class",
                                 "classes": list(self.classes), "counts": [list(r) for r in self.confusion]},
        }

    def lines(self) -> list[str]:
        width = max(len(c) for c in self.classes)
        out = [f"accuracy {self.accuracy:.4f} on {sum(self.support)} photos",
               f"{'class':<{width}}  precision  recall  photos"]
        out += [f"{c:<{width}}  {p:9.3f}  {r:6.3f}  {s:6d}"
                for c, p, r, s in zip(self.classes, self.precision, self.recall, self.support)]
        return out


def score(probs: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> Scores:
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
    value: float
    how: str
    kept_correct: float  # share of correct validation answers at or above it

    def to_json(self) -> dict:
        return {"value": self.value, "how": self.how, "kept_correct": round(self.kept_correct, 4)}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train.evaluate",
                                description="Score a model directory on a folder-per-class photo set.")
    p.add_argument("--model", required=True, help="model directory (model.keras + model.json)")
    p.add_argument("--data", required=True,
                   help="ROOT/<class>/* photos, or a split dataset ROOT/{Train,Validation,Test}/<class>/*")
    p.add_argument("--split", default=None, choices=("train", "validation", "test"),
                   help="which split of a split dataset to score (default: test if present, else validation)")
    p.add_argument("--json", default=None,
                   help="where to write the metrics JSON (default: <model>/report/eval-<data folder>.json)")
    return p


def _labelled_set(root: Path, classes: Sequence[str], split: Optional[str]):
    from .data import DatasetError, Split, SPLIT_NAMES, class_files, split_folder

    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    folder = root
    if split_folder(root, SPLIT_NAMES["train"]) is not None or split is not None:
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


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return exit_status(lambda: _run(args))


def _run(args) -> int:
    from knyang_cam import model_dir
    from knyang_cam.atomic import write_text
    from .data import decode_split
    from .model import infer

    info = model_dir.read(args.model, need=(model_dir.KERAS_FILE,))
    folder, split = _labelled_set(Path(args.data), info.classes, args.split)
    images = decode_split(split, info.classes, info.input_size[0])
    for path, why in images.skipped:
        print(f"skipped {path}: {why}", file=sys.stderr)
    if not len(images.labels):
        raise UserError(f"no decodable photos in {folder}")
    import keras

    model = keras.models.load_model(info.keras_path, compile=False)
    probs = infer(model, images.pixels)
    scores = score(probs, images.labels, info.classes)
    print("\n".join(scores.lines()))
    out = Path(args.json) if args.json else info.path / model_dir.REPORT_DIR / f"eval-{Path(args.data).name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"model": str(info.path), "data": str(folder), **scores.to_json(),
              "skipped": [{"file": str(p), "why": w} for p, w in images.skipped]}
    write_text(out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
