"""The model directory contract (docs/contracts.md): model.keras, model.tflite, model.json, report/.

Training writes it, the app reads it; this module is the one place that knows
the metadata's shape, so both sides agree.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import bundled
from .errors import UserError
from .results import RESERVED_NAMES

FORMAT = 1
KERAS_FILE = "model.keras"
TFLITE_FILE = "model.tflite"
META_FILE = "model.json"
REPORT_DIR = "report"
MAX_INPUT_SIDE = 4096  # pixels; more is a broken file, not a network
REBUILD = "{trainer} --data DATASET_DIR --out {path}"  # python -m train, or knyang-train installed


def is_control(ch: str) -> bool:
    """Whether `ch` is a control character (NUL, a newline, a tab, DEL)."""
    return ord(ch) < 32 or ord(ch) == 127


def has_control(name: str) -> bool:
    """Whether a class name holds a control character."""
    return any(map(is_control, name))


class ModelError(UserError):
    """A missing, unreadable or inconsistent model directory; its one line names the rebuild command (exit 2)."""


@dataclass(frozen=True)
class ModelInfo:
    """model.json of the directory `path`; ValueError for under two or repeated classes, or a threshold outside 0..1."""

    path: Path
    classes: tuple[str, ...]
    input_size: tuple[int, int]
    unknown_threshold: float
    backbone: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    created: str = ""
    familiarity: dict = field(default_factory=dict)  # how the model says "unknown" (train/familiar.py)

    def __post_init__(self):
        if len(self.classes) < 2:
            raise ValueError("a model needs at least two classes")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"duplicate class names: {self.classes}")
        # A blank name draws as nothing and a control character breaks the log's lines and the drawn text.
        if bad := [c for c in self.classes if not c.strip() or has_control(c)]:
            raise ValueError(f"class name {bad[0]!r} is blank or holds a control character")
        if reserved := [c for c in self.classes if c.lower() in RESERVED_NAMES]:
            raise ValueError(f"class {reserved[0]!r} has a reserved name ({', '.join(RESERVED_NAMES)})")
        if not all(0 < v <= MAX_INPUT_SIDE for v in self.input_size):
            raise ValueError(f"input_size {list(self.input_size)} not in 1..{MAX_INPUT_SIDE}")
        if not 0.0 <= self.unknown_threshold <= 1.0:
            raise ValueError(f"unknown_threshold {self.unknown_threshold} not in [0, 1]")

    @property
    def keras_path(self) -> Path:
        """`path/model.keras` (it may not exist: read() checks only the files it is asked for)."""
        return self.path / KERAS_FILE

    @property
    def tflite_path(self) -> Path:
        """`path/model.tflite`, the network the LiteRT backend runs."""
        return self.path / TFLITE_FILE

    def to_json(self) -> dict:
        """The model.json object of this model (`created` is now when unset)."""
        return {
            "format": FORMAT,
            "classes": list(self.classes),
            "input_size": list(self.input_size),
            "input": "rgb_0_255",
            "backbone": self.backbone,
            "unknown_threshold": self.unknown_threshold,
            "metrics": self.metrics,
            "created": self.created or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        } | ({"familiarity": self.familiarity} if self.familiarity else {})


def rebuild_hint(path: Path) -> str:
    """The "rebuild it with: python -m train ..." clause for error messages about the model at `path`."""
    return "rebuild it with: " + REBUILD.format(trainer=bundled.trainer_command(), path=path)


def is_model_dir(path: Path) -> bool:
    """True when `path` holds a model.json (os.path's test: Path's raises OSError for a name over 255 bytes)."""
    return os.path.isfile(path / META_FILE)


def _models_in(folder: Path) -> list[Path]:
    """The model directories directly in `folder` (none where it cannot be listed)."""
    try:
        return sorted(d for d in folder.iterdir() if is_model_dir(d))
    except OSError:
        return []


def _not_model_files(folder: Path) -> list[str]:
    """The names in `folder` when none of them is a model's file (its own files, even without model.json,
    make it a broken model to rebuild); [] when it holds one, is empty or cannot be listed."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    return [] if {TFLITE_FILE, KERAS_FILE, REPORT_DIR} & set(names) else names


def read(path: str | Path, need: tuple[str, ...] = (TFLITE_FILE,)) -> ModelInfo:
    """Read and check `path/model.json` and that the files in `need` exist.

    Raises ModelError with one line naming the file and the rebuild command.
    """
    path = Path(path)
    if os.path.isfile(path):
        # --model models/knyang/model.tflite: the rebuild hint would train into a file's name.
        where = f"--model {path.parent}" if os.path.isfile(path.parent / META_FILE) else "the folder holding model.json"
        raise ModelError(f"{path} is a file: a model is a directory; give {where}")
    if not os.path.isdir(path):  # not Path.is_dir, which raises OSError for a name over 255 bytes
        raise ModelError(f"model directory not found: {path} ({rebuild_hint(path)})")
    meta = path / META_FILE
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if models := _models_in(path):
            # --model models: the rebuild hint said to train into the folder of models, which training refuses.
            raise ModelError(f"{path} holds model directories, not a model: give one of them, such as "
                             f"{models[0]}") from None
        if others := _not_model_files(path):
            # --model . in a folder of photos: the rebuild hint said to train into it, which training refuses.
            raise ModelError(f"{path} is not a model directory: no {META_FILE}, only files no model holds (such "
                             f"as {others[0]}); give the folder knyang-train wrote (its --out)") from None
        raise ModelError(f"model is missing {meta} ({rebuild_hint(path)})") from None
    except (OSError, ValueError, RecursionError) as e:  # RecursionError: nested past Python's limit
        raise ModelError(f"model metadata {meta} is unreadable: {str(e) or type(e).__name__} "
                         f"({rebuild_hint(path)})") from None
    if not isinstance(data, dict):
        raise ModelError(f"model metadata {meta} is invalid: a JSON object is expected, got "
                         f"{type(data).__name__} ({rebuild_hint(path)})")
    for name in need:
        if not (path / name).is_file():
            raise ModelError(f"model is missing {path / name} ({rebuild_hint(path)})")
    try:
        if type(data.get("format")) is not int or data["format"] != FORMAT:  # true == 1 in Python
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
        if not isinstance(data["classes"], list) or not all(isinstance(c, str) for c in data["classes"]):
            raise ValueError(f"classes must be a list of names, got {data['classes']!r:.80}")
        if data.get("input", "rgb_0_255") != "rgb_0_255":
            raise ValueError(f"input {data.get('input')!r}, expected 'rgb_0_255'")
        h, w = (int(v) for v in data["input_size"])
        return ModelInfo(
            path=path,
            classes=tuple(data["classes"]),
            input_size=(h, w),
            unknown_threshold=float(data.get("unknown_threshold", 0.6)),
            backbone=dict(data.get("backbone") or {}),
            metrics=dict(data.get("metrics") or {}),
            created=str(data.get("created", "")),
            # For people only (the gate is inside the network): one of another shape is not needed, so skipped.
            familiarity=fam if isinstance(fam := data.get("familiarity"), dict) else {},
        )
    except KeyError as e:
        raise ModelError(f"model metadata {meta} is invalid: missing field {e.args[0]} "
                         f"({rebuild_hint(path)})") from None
    except (TypeError, ValueError, OverflowError) as e:
        raise ModelError(f"model metadata {meta} is invalid: {e} ({rebuild_hint(path)})") from None


def check_network(info: ModelInfo, file: Path, in_shape, out_shape) -> None:
    """A network file (`in_shape`, `out_shape` of its one input and output) must agree with model.json, else its
    predictions would be silently mislabelled; ModelError otherwise."""
    in_shape = [None if d is None else int(d) for d in in_shape]
    h, w = info.input_size
    if len(in_shape) != 4 or in_shape[1:] != [h, w, 3]:
        raise ModelError(f"{file} takes input {in_shape[1:]} but {info.path / META_FILE} "
                         f"says input_size {[h, w]} ({rebuild_hint(info.path)})")
    n = len(info.classes)
    if int(out_shape[-1]) != n:
        raise ModelError(f"{info.path / META_FILE} lists {n} classes but {file} outputs "
                         f"{int(out_shape[-1])} ({rebuild_hint(info.path)})")


def write_meta(info: ModelInfo, directory: Path | None = None) -> Path:
    """Write model.json of `info` atomically into `directory` (default: info.path); returns the file's path."""
    from .atomic import write_text

    target = Path(directory or info.path) / META_FILE
    write_text(target, json.dumps(info.to_json(), indent=2, ensure_ascii=False) + "\n")
    return target
