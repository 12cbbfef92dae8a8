"""Write a trained network as a model directory (docs/contracts.md), atomically.

Everything goes into a staging directory beside the target, which is swapped in
only when complete, so an interrupted export never leaves a half-written model
where the app would load it. The target is checked and locked by knyang_cam.paths:
never a folder of user files, one writer at a time, a killed run's staging removed.
"""
from __future__ import annotations

import contextlib
import io
import shutil
import signal
import threading
from collections.abc import Callable
from pathlib import Path

from knyang_cam import model_dir, model_out
from knyang_cam.atomic import mark_work, swap_dir
from knyang_cam.errors import OutputError
from knyang_cam.model_dir import ModelInfo


def tflite_bytes(model) -> bytes:
    """Convert a Keras model to a LiteRT flatbuffer (float32, dynamic batch).

    `from_keras_model` is used on purpose: converting a hand-made tf.function's
    concrete function gave wrong outputs with Keras 3 (variables not captured).
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    # The converter prints its captured-variable listing on stdout; keep the terminal readable.
    with contextlib.redirect_stdout(io.StringIO()):
        return converter.convert()


def without_training_state(model):
    """The same network (same layers, same weights) as a model that was never compiled.

    Keras 3 writes the optimizer's state into a .keras file of a compiled model (Adam's
    two moments per trainable weight: about 60% of the file here) and ignores
    `include_optimizer` for .keras files; the app only needs the network.
    """
    import keras

    if getattr(model, "optimizer", None) is None:
        return model
    return keras.Model(model.inputs, model.outputs, name=model.name)


def write_model_dir(model, info: ModelInfo, out: str | Path,
                    write_report: Callable[[Path], None] | None = None, tflite: bytes | None = None) -> Path:
    """Save `model` as `out/` (model.keras, model.tflite, model.json, report/) and return `out`.

    `tflite`: the same network as a .tflite already (the live retrain's patched copy,
    train/tflite_edit.py); without it `model` is converted.
    """
    with model_out.claim_model_dir(model_out.check_model_out(out)) as target, _sigterm_unwinds():
        try:
            _write(model, info, target, write_report, tflite)
        except OSError as e:  # a full disk, a quota: the staging is gone and the old model in place
            raise OutputError(f"cannot write the model directory {out}: {e.strerror or e}; the previous one "
                              f"(if any) is unchanged") from None
    return Path(out)


@contextlib.contextmanager
def _sigterm_unwinds():
    """While exporting, SIGTERM (left at its default, which ends the process on the spot) unwinds
    like Ctrl-C instead, so the staging folder is removed whatever command line runs the export."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def unwind(signum, _frame):
        raise KeyboardInterrupt(signum)

    signal.signal(signal.SIGTERM, unwind)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _write(model, info: ModelInfo, out: Path, write_report: Callable[[Path], None] | None,
           tflite: bytes | None) -> None:
    staging = model_out.staging_dir(out)
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    try:
        mark_work(staging)
        without_training_state(model).save(staging / model_dir.KERAS_FILE)
        (staging / model_dir.TFLITE_FILE).write_bytes(tflite if tflite is not None else tflite_bytes(model))
        model_dir.write_meta(info, staging)
        report = staging / model_dir.REPORT_DIR
        report.mkdir()
        if write_report is not None:
            write_report(report)
        swap_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
