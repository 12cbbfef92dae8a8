"""The model directory a training writes (--out): which folder may be replaced, and replacing it safely.

A model directory is replaced only when it is one (model.json) or empty and holds nothing else (its
report folder included), it never overlaps the dataset or another input, and one process at a time
writes it (a lock file beside it). The new model is built in a staging folder beside it and swapped
in whole (knyang_cam.atomic); what a killed training left behind is removed or put back by the next,
which touches only the folders it can tell it made.
"""
from __future__ import annotations

import fnmatch
import glob
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .atomic import WORK_MARKER, is_work, old_beside, pid_alive, temp_pid
from .model_dir import KERAS_FILE, META_FILE, REPORT_DIR, TFLITE_FILE, is_model_dir
from .paths import (
    Input,
    PathError,
    check_name,
    check_not_empty,
    check_parent,
    check_writable,
    is_within,
    outermost_missing,
    remove_made,
    resolved,
    same_file,
)

# Everything a model directory holds: a folder with anything else is not replaced, whatever model.json it has.
MODEL_ENTRIES = (META_FILE, KERAS_FILE, TFLITE_FILE, REPORT_DIR)
# What its report folder holds: training's report (train/report.py) and train.evaluate's scores (eval-*.json).
MODEL_REPORT_FILES = ("metrics.json", "confusion.png", "curves.png", "misclassified.png")
EVAL_FILES = "eval-*.json"
# A staging or set-aside folder beside a model directory: .NAME.staging-PID, .NAME.old-PID.
_ASIDE = re.compile(r"\.(?P<name>.+)\.(?P<kind>staging|old)-(?P<pid>\d+)")


def _report_file(path: Path) -> bool:
    """True for a file a model directory's report folder may hold: the report, evaluate's scores, or
    the temporary file of one of them left by a killed writer."""
    name = path.name
    return path.is_file() and (name in MODEL_REPORT_FILES or fnmatch.fnmatch(name, EVAL_FILES)
                               or temp_pid(name) is not None)


def foreign_entries(folder: Path, also: Sequence[str] = ()) -> list[str]:
    """What `folder` (a model directory, or its staging with names `also`) holds that the program does
    not write there, as paths relative to it; its report folder is looked into too."""
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.name == REPORT_DIR and entry.is_dir():
            found += [f"{REPORT_DIR}/{f.name}" for f in sorted(entry.iterdir()) if not _report_file(f)]
        elif entry.name not in (*MODEL_ENTRIES, *also) or not entry.is_file():
            found.append(entry.name)
    return found


def check_model_out(out, data=None, inputs: Sequence[Input] = (), flag: str = "--out") -> Path:
    """The resolved model directory to write, or PathError: never a file, a folder with user files (its
    report folder included), the dataset (or a folder holding it or inside it), nor a folder holding
    another input."""
    p = check_not_empty(flag, out)
    check_name(flag, p)
    if p.exists() and not p.is_dir():
        raise PathError(f"{flag} {p} is a file, not a model directory")
    if data is not None and (is_within(p, data) or is_within(data, p)):
        raise PathError(f"{flag} {p} overlaps --data {data}: the model directory must be outside "
                        f"the dataset and must not hold it")
    if p.is_dir() and not is_model_dir(p) and any(p.iterdir()):
        raise PathError(f"{flag} {p} is a folder with files but no {META_FILE}, not a model directory: "
                        f"refusing to replace it; choose a new folder or an existing model directory")
    for i in inputs:
        if same_file(i.path, p):
            raise PathError(f"{flag} {p} is the {i.flag} {i.path}: write the new model to another folder")
        if is_within(i.path, p):
            raise PathError(f"{i.flag} {i.path} is inside {flag} {p}, which is replaced by the new model")
        if i.folder and is_within(p, i.path):
            raise PathError(f"{flag} {p} is inside the {i.flag} folder {i.path}: choose a folder outside it")
    if p.is_dir() and (foreign := foreign_entries(p)):
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise PathError(f"{flag} {p} holds {', '.join(foreign[:3])}{more} beside its model: refusing to replace "
                        f"them; move them out or choose another folder")
    check_parent(flag, p)
    check_writable(flag, p)  # its staging folder and lock file go beside it
    for aside in (staging_dir(p), old_beside(p)):
        if aside.exists() and not is_leftover(aside):
            raise PathError(f"{aside} is in the way of {flag} {p} and was not made by knyang-cam: move it")
    return resolved(p)


def staging_dir(out: Path) -> Path:
    """Where a new model directory for `out` is built before it is swapped in."""
    return out.with_name(f".{out.name}.staging-{os.getpid()}")


def _note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr, flush=True)


def is_leftover(folder: Path) -> bool:
    """True when `folder` is a staging or set-aside folder this program made (atomic.mark_work) and
    holds nothing but a model directory's files: only such a folder is removed or restored."""
    return folder.is_dir() and not folder.is_symlink() and is_work(folder) and \
        not foreign_entries(folder, also=(WORK_MARKER,))


def recover(out: Path, note: Callable[[str], None] = _note) -> None:
    """Clean up after a training that was killed while writing `out` (call with the lock held).

    Staging folders for `out` of other processes are removed (with the lock held, none of them is
    still writing), and those of dead processes beside it; an old model renamed aside just before a
    crash is put back when `out` is absent. Only folders this program made are touched (is_leftover):
    one of such a name that it did not make is left as it is, with a note when it is named after `out`.
    """
    for stale in sorted(out.parent.glob(".*.staging-*")):
        m = _ASIDE.fullmatch(stale.name)
        if m is None or m["kind"] != "staging" or int(m["pid"]) == os.getpid():
            continue
        ours = m["name"] == out.name
        # Beside other model directories (a retrain's new one each time) only a dead process's.
        if not ours and pid_alive(int(m["pid"])):
            continue
        if is_leftover(stale):
            shutil.rmtree(stale, ignore_errors=True)
            note(f"removed {stale}, left by a training that was killed")
        elif ours:
            note(f"left {stale} as it is: not a staging folder knyang-cam made")
    for old in sorted(out.parent.glob(f".{glob.escape(out.name)}.old-*")):
        if _ASIDE.fullmatch(old.name) is None:
            continue
        if not is_leftover(old):
            note(f"left {old} as it is: not a model directory knyang-cam set aside")
        elif not out.exists():
            (old / WORK_MARKER).unlink()
            os.replace(old, out)
            note(f"restored {out} from {old}, left by a training that was killed")
        else:
            shutil.rmtree(old, ignore_errors=True)


_held: dict[Path, int] = {}


def _lock(lock_path: Path, out: Path) -> int:
    """An open, exclusively locked descriptor of `lock_path`, or PathError when another process holds it.

    The file is removed on release; a lock taken on a file that was removed meanwhile is retried,
    so two processes can never both hold one.
    """
    import fcntl

    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise PathError(f"another process (pid {holder}) is writing the model directory {out}: "
                            f"wait for it to finish or choose another --out") from None
        try:
            current = os.stat(lock_path).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return fd
        os.close(fd)  # the holder before us removed it on release: lock the new file


@contextmanager
def claim_model_dir(out, note: Callable[[str], None] = _note) -> Iterator[Path]:
    """Hold the lock on model directory `out` (a lock file beside it, removed on release) and recover
    a killed run's leftovers.

    A second process asking for the same directory gets PathError at once; within one process the
    claim is re-entrant. Without fcntl (Windows) there is no lock, only the recovery.
    """
    out = resolved(out)
    if out in _held:
        yield out
        return
    made = outermost_missing(out.parent)
    out.parent.mkdir(parents=True, exist_ok=True)
    lock_path = out.with_name(f".{out.name}.lock")
    try:
        fd = _lock(lock_path, out)
    except ImportError:
        fd = -1
    _held[out] = fd
    try:
        recover(out, note)
        yield out
    finally:
        del _held[out]
        if fd >= 0:
            lock_path.unlink(missing_ok=True)
            os.close(fd)
        # A training that failed before writing (no internet for the weights) left an empty models/ behind.
        remove_made(out.parent, made)
