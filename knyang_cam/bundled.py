"""Where the files that ship with the app are: the default config, the bundled model, the demo clip.

From a clone they are the clone's own `config.yaml`, `models/` and `assets/`. An installed wheel
carries copies of them as package data under `knyang_cam/_bundled/` (pyproject.toml maps the
folders there), found through importlib.resources. The clone wins when both exist, so an
editable install and `python -m knyang_cam` from the repository use the files a developer edits.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources, util
from pathlib import Path

CLONE_ROOT = Path(__file__).resolve().parent.parent
DEMO_CLIP = "assets/demo.mp4"
FINDER_DIR = "models/finder"
CONFIG_FILE = "config.yaml"


def _is_clone(root: Path) -> bool:
    return (root / "pyproject.toml").is_file() and (root / "models").is_dir()


@lru_cache(maxsize=1)
def root() -> Path:
    """The folder that holds `config.yaml`, `models/` and `assets/` for this installation."""
    if _is_clone(CLONE_ROOT):
        return CLONE_ROOT
    # Wheels install unpacked, so the package data is a real folder (not inside a zip).
    return Path(str(resources.files(__package__).joinpath("_bundled")))


def trainer_package() -> str:
    """The trainer beside this package: `train` in a clone, `knyang_train` where a wheel installed it
    (pyproject.toml maps train/ to that name)."""
    return "train" if root() == CLONE_ROOT and (CLONE_ROOT / "train" / "retrain.py").is_file() else "knyang_train"


def trainer_command(module: str = "") -> str:
    """How a user runs the trainer (or its `module`, e.g. "finder") here: an installed wheel has no
    `train` module (`python -m train` would run a user's own train.py), it has `knyang-train`."""
    package = trainer_package()
    if package == "train" and not _in_clone_root() and util.find_spec("knyang_train") is not None:
        # `python -m train` finds the clone's trainer only from the clone's root (the current folder comes first
        # on sys.path); from elsewhere it failed, while the editable install has it as knyang-train.
        package = "knyang_train"
    if not module:
        return "python -m train" if package == "train" else "knyang-train"
    return f"python -m {package}.{module}"


def _in_clone_root() -> bool:
    try:
        return Path.cwd().resolve() == CLONE_ROOT
    except OSError:  # the current folder was removed
        return False


def path(relative: str | Path) -> Path:
    """`relative` (e.g. "models/knyang") inside the bundled files."""
    return root() / relative


def resolve(user_path: str | Path) -> Path:
    """A relative path from the current folder if it exists there, else from the bundled files.

    So `--model models/knyang` works from any folder; a path that exists nowhere is returned
    as given, and the caller's error names what the user typed.
    """
    p = Path(user_path).expanduser()
    if p.is_absolute() or p.exists() or not path(p).exists():
        return p
    return path(p)
