"""Typed configuration: dataclass defaults, overridden by a YAML file, then by the CLI.

Every field's default here equals the value in the repository's `config.yaml`
(a test checks it), so the file documents exactly what runs. Unknown keys are
rejected by their dotted name with a close-match suggestion; wrong types and
out-of-range values name the key and what is allowed.
"""
from __future__ import annotations

import dataclasses
import datetime
import difflib
import math
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import bundled
from .errors import UserError


class ConfigError(UserError):
    """A bad config file or value; its one line names the dotted key and what is allowed (exit status 2)."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (plain YAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        self._refuse_twice(node, deep)
        return super().construct_mapping(node, deep)

    def _refuse_twice(self, node, deep):
        seen = set()
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                # `<<: *defaults`: the base class merges it, and a key given beside it wins, as YAML says;
                # a mapping merged in is never constructed on its own, so it is checked here.
                merged = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for m in merged:
                    if isinstance(m, yaml.MappingNode):
                        self._refuse_twice(m, deep)
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, typing.Hashable):
                continue  # the base class says so, with the line
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key '{key}' is given twice",
                                                        key_node.start_mark)
            seen.add(key)


class _Dumper(yaml.SafeDumper):
    """YAML's safe dumper, quoting what _UniqueKeyLoader would read as another type."""


# YAML 1.1, which PyYAML reads, wants a dot and a signed exponent in a float: 1e-4 and 1.0e4 were strings,
# refused as 'must be a number, got '1e-4''. YAML 1.2 reads them as numbers, as users expect. The dumper
# knows it too, so that a name like '1e5' is written in quotes and read back as a name.
for _cls in (_UniqueKeyLoader, _Dumper):
    _cls.add_implicit_resolver(
        "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
        list("-+0123456789."))


def _range(lo=None, hi=None, **extra):
    return {"range": (lo, hi), **extra}


def _choices(*values):
    return {"choices": values}


@dataclass(frozen=True)
class CameraConfig:
    """`camera:` the requested capture size and rate, and how a lost camera is reopened."""

    width: int = field(default=640, metadata=_range(64, 7680))
    height: int = field(default=480, metadata=_range(48, 4320))
    fps: int = field(default=30, metadata=_range(1, 240))
    reconnect_attempts: int = field(default=3, metadata=_range(0, 100))
    reconnect_delay_s: float = field(default=0.5, metadata=_range(0.0, 60.0))


@dataclass(frozen=True)
class RegionsConfig:
    """`regions:` where to look in a frame: the crop mode, the detector and its settings."""

    crop: str = field(default="detect", metadata=_choices("center", "detect"))
    detector: str = field(default="cats", metadata=_choices("cats", "faces"))
    detect_every: int = field(default=3, metadata=_range(1, 1000))
    expand_cat: float = field(default=1.0, metadata=_range(1.0, 3.0))
    sure_cat: float = field(default=0.95, metadata=_range(0.0, 1.0))
    flat: float = field(default=0.01, metadata=_range(0.0, 1.0))
    zooms: int = field(default=3, metadata=_range(1, 6))
    zoom_step: float = field(default=0.8, metadata=_range(0.5, 0.95))
    views_in_turn: bool = True
    centre_view: float | None = field(default=0.8, metadata=_range(0.0, 1.0))
    detect_width: int = field(default=320, metadata=_range(64, 4096))
    expand: float = field(default=1.8, metadata=_range(1.0, 4.0))
    max_regions: int = field(default=4, metadata=_range(1, 32))
    min_face: int = field(default=32, metadata=_range(8, 1024))
    scale_step: float = field(default=1.1, metadata=_range(1.01, 2.0))


@dataclass(frozen=True)
class ClassifierConfig:
    """`classifier:` the inference backend and its CPU threads."""

    backend: str = field(default="auto", metadata=_choices("auto", "litert", "tensorflow"))
    threads: int = field(default=2, metadata=_range(1, 64))


@dataclass(frozen=True)
class SmoothingConfig:
    """`smoothing:` the per-region moving average, the unknown threshold, anti-flicker and cut detection."""

    alpha: float = field(default=0.25, metadata=_range(0.01, 1.0))
    detect_alpha: float = field(default=0.1, metadata=_range(0.01, 1.0))
    iou_match: float = field(default=0.3, metadata=_range(0.0, 1.0))
    forget_after: int = field(default=15, metadata=_range(1, 10000))
    unknown_threshold: float | None = field(default=None, metadata=_range(0.0, 1.0))
    hysteresis: float = field(default=0.05, metadata=_range(0.0, 0.49))
    hold: int = field(default=2, metadata=_range(1, 1000))
    exclusive: bool = True
    same_cat_iou: float = field(default=0.2, metadata=_range(0.0, 1.0))
    cut_threshold: float = field(default=25.0, metadata=_range(0.0, 255.0))

    def alpha_for(self, crop: str) -> float:
        """The moving average's weight of the newest frame in crop mode `crop`."""
        return self.detect_alpha if crop == "detect" else self.alpha


@dataclass(frozen=True)
class OverlayConfig:
    """`overlay:` confidence bars, a font for names OpenCV cannot draw, how long toasts stay."""

    bars: bool = True
    font: str | None = None
    toast_s: float = field(default=1.5, metadata=_range(0.0, 60.0))


@dataclass(frozen=True)
class AppConfig:
    """`app:` the model to load, where crops and snapshots are saved, and whether files play in real time."""

    model: str = "models/knyang"
    dataset_root: str = "data/mycats"
    snapshots_dir: str = "snapshots"
    realtime: bool | None = None


@dataclass(frozen=True)
class TrainConfig:
    """`train:` the training recipe, used by `python -m train` and the background retrain."""

    seed: int = field(default=1337, metadata=_range(0, 2**31 - 1))
    image_size: int = field(default=160, metadata=_range(32, 512))
    alpha: float = field(default=1.0, metadata=_choices(0.35, 0.5, 0.75, 1.0, 1.3, 1.4))
    batch_size: int = field(default=32, metadata=_range(1, 1024))
    validation_fraction: float = field(default=0.2, metadata=_range(0.05, 0.5))
    learn_validation: bool = True
    dropout: float = field(default=0.2, metadata=_range(0.0, 0.9))
    head_epochs: int = field(default=150, metadata=_range(1, 10000))
    head_learning_rate: float = field(default=0.01, metadata=_range(1e-7, 1.0))
    head_l2: float = field(default=0.01, metadata=_range(0.0, 1e6))
    head_views: int = field(default=31, metadata=_range(1, 31))
    reference_views: int = field(default=9, metadata=_range(1, 31))
    reference_merge: float = field(default=0.9, metadata=_range(0.5, 1.0))
    unknown_keep: float = field(default=0.93, metadata=_range(0.5, 1.0))
    other_animal_weight: float = field(default=1.0, metadata=_range(0.0, 2.0))
    fine_tune_at: int = field(default=100, metadata=_range(0, 1000))
    fine_tune_epochs: int = field(default=0, metadata=_range(0, 1000))
    fine_tune_learning_rate: float = field(default=1e-4, metadata=_range(1e-8, 1.0))
    patience: int = field(default=3, metadata=_range(1, 1000))
    feature_cache: str | None = None


@dataclass(frozen=True)
class RetrainConfig:
    """`retrain:` when a live retrain starts by itself, the accuracy gate, where new models go."""

    auto_after: int = field(default=0, metadata=_range(0, 100000))
    max_accuracy_drop: float = field(default=0.02, metadata=_range(0.0, 1.0))
    models_dir: str = "models"


@dataclass(frozen=True)
class Config:
    """The whole configuration, one frozen section per top-level key of config.yaml."""

    camera: CameraConfig = field(default_factory=CameraConfig)
    regions: RegionsConfig = field(default_factory=RegionsConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    overlay: OverlayConfig = field(default_factory=OverlayConfig)
    app: AppConfig = field(default_factory=AppConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)


# The clone's config.yaml, or the copy an installed wheel carries (knyang_cam/bundled.py).
DEFAULT_CONFIG_FILE = bundled.path(bundled.CONFIG_FILE)


def _dotted_keys(cls, prefix="") -> list[str]:
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        name = prefix + f.name
        if dataclasses.is_dataclass(hints[f.name]):
            keys += _dotted_keys(hints[f.name], name + ".")
        else:
            keys.append(name)
    return keys


def _type_name(tp) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[tp]


def _check_value(key: str, tp, value: Any, meta: dict) -> Any:
    # Optional[X] and X | None alike (their origins differ: typing.Union, types.UnionType).
    optional = type(None) in typing.get_args(tp)
    if optional:
        if value is None:
            return None
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        try:
            value = float(value)
        except OverflowError:
            raise ConfigError(f"config key '{key}' must be a finite number, got an integer of "
                              f"{len(str(abs(value)))} digits") from None
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        extra = " or null" if optional else ""
        hint = ""
        if tp is str and "choices" not in meta and isinstance(value, (bool, int, float, datetime.date)):
            # `model: no` or `snapshots_dir: 2024-05-01` is a folder's name to the user, false or a date to YAML.
            read = ("no, yes, on and off as false and true" if isinstance(value, bool) else
                    f"it as a {'date' if isinstance(value, datetime.date) else 'number'}")
            hint = f": YAML reads {read}; put the name in quotes"
        raise ConfigError(f"config key '{key}' must be {_type_name(tp)}{extra}, got {value!r}{hint}")
    if tp is str and not value.strip():
        raise ConfigError(f"config key '{key}' is empty: give a value or leave the key out")
    if tp is str and "\0" in value:  # a path, a font or a choice: none holds one
        raise ConfigError(f"config key '{key}' contains a NUL character (\\0), which no path may hold")
    if tp is str and "choices" not in meta:
        # A path (its ~ is expanded where it is used). A shell expands `$HOME/cats` on the command line,
        # YAML does not: the label keys wrote into a folder named '$HOME' of the current one.
        value = os.path.expandvars(value)
        if unset := re.search(r"\$(\w+|\{\w+\})", value):
            # Left as written, `dataset_root: $CATS/x` made a folder named '$CATS' for the label keys' photos.
            raise ConfigError(f"config key '{key}' names {unset.group(0)}, which is not set in the environment: "
                              f"set it, or write the path out")
    if tp is float and not math.isfinite(value):
        raise ConfigError(f"config key '{key}' must be a finite number, got {value!r}")
    if "choices" in meta and value not in meta["choices"]:
        allowed = ", ".join(map(str, meta["choices"]))
        raise ConfigError(f"config key '{key}' must be one of {allowed}, got {value!r}")
    lo, hi = meta.get("range", (None, None))
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"config key '{key}' = {value!r} is out of range [{lo}, {hi}]")
    return value


def _build(cls, data: dict, prefix: str = "", root_cls=None):
    root_cls = root_cls or cls
    if not isinstance(data, dict):
        if not prefix:  # a list or a lone value: not a config file at all, or one indented wrong
            kind = "a list" if isinstance(data, list) else f"the single value {data!r}"
            raise ConfigError(f"the config must be sections of keys (camera:, smoothing:, ...), got {kind}")
        raise ConfigError(f"config key '{prefix.rstrip('.')}' must be a mapping")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            if dotted in _dotted_keys(root_cls):  # `smoothing.alpha: 0.3` at the top: YAML has no dotted keys
                section, name = dotted.rsplit(".", 1)
                raise ConfigError(f"config key '{dotted}' is one key with a dot in its name: write "
                                  f"'{name}:' indented under '{section}:'")
            # A misspelt section (keys under it) is a section's name; a misspelt key, any key's dotted name.
            names = [prefix + n for n in fields if dataclasses.is_dataclass(hints[n])] if isinstance(value, dict) \
                else _dotted_keys(root_cls)
            close = difflib.get_close_matches(dotted, names, n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"unknown config key '{dotted}'{hint}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            values[key] = _build(tp, {} if value is None else value, dotted + ".", root_cls)  # `camera:` alone
        else:
            values[key] = _check_value(dotted, tp, value, dict(fields[key].metadata))
    return cls(**values)


def from_dict(data: dict) -> Config:
    """A validated Config from parsed YAML (missing keys keep their defaults); ConfigError names the first bad key."""
    return _build(Config, data)


def load(path: str | Path | None = None) -> Config:
    """Load `path`, or the repository's config.yaml when none is given and it exists."""
    if path is None:
        if not DEFAULT_CONFIG_FILE.exists():
            return Config()
        path = DEFAULT_CONFIG_FILE
    path = Path(path)
    try:  # Path's tests raise OSError too (a name over 255 bytes, a folder that cannot be searched)
        if path.is_char_device() or path.is_block_device():
            # /dev/zero or /dev/urandom was read until memory ran out (the system killed the run); a pipe
            # (--config <(...)) ends, and is read.
            raise ConfigError(f"config file {path} is a device, not a file: give a YAML file")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder: give a YAML file") from None
    except UnicodeDecodeError as e:  # a UTF-16 file from Notepad, or no text at all
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start}): "
                          f"save it as UTF-8") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        if problem.startswith("but "):  # "but found another document": the half of PyYAML's sentence it names
            problem = f"{e.context}, {problem}"
        raise ConfigError(f"invalid YAML in {path}{where}: {problem}") from None
    except RecursionError:  # `[[[[...` thousands deep: PyYAML recurses once per level
        raise ConfigError(f"invalid YAML in {path}: nested too deeply") from None
    return from_dict(data or {})


def dump(data: dict) -> str:
    """`data` as YAML that `load` reads back as it was (a config file for another process)."""
    return yaml.dump(data, Dumper=_Dumper)


def override(cfg: Config, **dotted: Any) -> Config:
    """Return `cfg` with dotted keys replaced, validated; None values are ignored (a command-line flag not given)."""
    return with_values(cfg, {key: value for key, value in dotted.items() if value is not None})


def with_values(cfg: Config, dotted: dict[str, Any]) -> Config:
    """Return `cfg` with every dotted key replaced, None included where the key allows it (YAML's null), validated."""
    for key, value in dotted.items():
        section, name = key.split(".")
        sub = getattr(cfg, section)
        f = next(f for f in dataclasses.fields(sub) if f.name == name)
        checked = _check_value(key, typing.get_type_hints(type(sub))[name], value, dict(f.metadata))
        cfg = dataclasses.replace(cfg, **{section: dataclasses.replace(sub, **{name: checked})})
    return cfg
