"""Optional parts of the install: a feature whose packages are missing says which `pip install` adds them.

The base install is the live app (LiteRT, OpenCV), `--report` included. Training, evaluation and
the TensorFlow backend need the `train` extra (or `gpu`); pyproject.toml lists them.
"""
from __future__ import annotations

import importlib.util
import os

from .errors import UserError

PACKAGE = "knyang-cam"


def missing(*modules: str) -> list[str]:
    """The top-level modules of `modules` that cannot be imported."""
    return [m for m in modules if importlib.util.find_spec(m) is None]


def require(what: str, extra: str, *modules: str) -> None:
    """Raise one UserError line naming the pip install that adds `modules`, when any is missing."""
    absent = missing(*modules)
    if absent:
        raise UserError(f"{what} needs {', '.join(absent)}, which is not installed: "
                        f"pip install \"{PACKAGE}[{extra}]\"")


def require_tensorflow(what: str) -> None:
    """Raise one UserError line naming the pip install of the `train` extra when TensorFlow or Keras is missing."""
    require(what, "train", "tensorflow", "keras")


def quiet_tensorflow(verbose: bool = False) -> None:
    """Import TensorFlow without its C++ start-up noise (CUDA probes, `E0000 ... cuInit` on CPU-only
    machines), which reads like a failure. Call before anything imports TensorFlow.

    TF_CPP_MIN_LOG_LEVEL covers TensorFlow's own logging; XLA's absl lines printed before absl is
    initialised ignore it, so stderr is closed for the import itself. `verbose` keeps all of it.
    """
    if verbose:
        return
    # 3, not 2: the cuInit line is logged as an error, when the devices are first listed.
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if missing("tensorflow"):
        return  # the caller's require_tensorflow() names the pip install
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
