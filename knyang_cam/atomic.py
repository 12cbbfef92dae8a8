"""Atomic file and directory writes: readers see the old content or the new, never half."""
from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import: os.umask can only be read by setting it, which is not thread-safe.
_FILE_MODE = 0o666 & ~_current_umask()


_TEMP = re.compile(r"\.tmp-(\d+)-[0-9a-f]+")


def temp_beside(target: str | os.PathLike) -> Path:
    """Create an empty, new, hidden file beside `target`: `.STEM.tmp-PID-RANDOM.SUFFIX`.

    The suffix is kept so that writers which pick a format from the extension (cv2, PIL)
    still work; the PID lets a later run tell a dead process's leftover (paths.sweep_temp).
    """
    target = Path(target)
    while True:
        tmp = target.with_name(f".{target.stem}.tmp-{os.getpid()}-{secrets.token_hex(4)}{target.suffix}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp


def temp_pid(name: str) -> int | None:
    """The PID in a temp_beside name, or None for any other name."""
    m = _TEMP.search(name)
    return int(m.group(1)) if m else None


def pid_alive(pid: int) -> bool:
    """True when a process `pid` exists, also one owned by another user."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it over `target` on success. On any error it is removed."""
    target = Path(target)
    tmp_path = temp_beside(target)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    """Replace `target` with `data` (temp beside it, fsync, rename); on any error the old file stays."""
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def write_text(target: str | os.PathLike, text: str) -> None:
    """`write_bytes` of `text` encoded as UTF-8."""
    write_bytes(target, text.encode("utf-8"))


def write_new(target_dir: str | os.PathLike, stem: str, suffix: str, data: bytes) -> Path:
    """Write `data` atomically under a name that does not exist yet; never overwrite.

    The data goes to a hidden temporary file first, which is then hard-linked to the
    first free name: link() fails if the name exists, so a concurrent writer cannot be
    clobbered, and a reader never sees a half-written file under the final name.
    """
    target_dir = Path(target_dir)
    tmp_path = temp_beside(target_dir / f"{stem}{suffix}")
    try:
        with open(tmp_path, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        for n in range(10_000):
            path = target_dir / (f"{stem}{suffix}" if n == 0 else f"{stem}-{n}{suffix}")
            try:
                os.link(tmp_path, path)
            except FileExistsError:
                continue
            return path
        raise FileExistsError(f"no free name for {stem}{suffix} in {target_dir}")
    finally:
        tmp_path.unlink(missing_ok=True)


# Put in each folder this program builds or sets aside beside a model directory (its staging folder, the
# old model while the new one is swapped in) and taken out before it becomes the model directory: only a
# folder that holds it is ever removed or restored by the crash recovery (model_out.recover), so a user's
# folder that happens to have such a name is never touched.
WORK_MARKER = ".knyang-cam-work"


def mark_work(folder: Path) -> None:
    """Claim `folder` as this program's staging or set-aside folder (WORK_MARKER)."""
    (folder / WORK_MARKER).touch()


def is_work(folder: Path) -> bool:
    """True when `folder` was marked by mark_work."""
    return (folder / WORK_MARKER).is_file()


def old_beside(target: Path) -> Path:
    """Where swap_dir puts the directory `target` aside while the new one is renamed in."""
    return target.with_name(f".{target.name}.old-{os.getpid()}")


def swap_dir(staging: Path, target: Path) -> None:
    """Replace directory `target` by `staging` (same parent, marked by mark_work) with the shortest window.

    The old directory is renamed aside first and marked, then the new one unmarked and renamed in; a
    crash between the two renames leaves `target.old-*` beside an absent target, never a
    half-written target.
    """
    old = None
    if target.exists():
        old = old_beside(target)
        if old.exists():
            shutil.rmtree(old)  # ours: model_out.check_model_out refuses an unmarked one before any work
        os.replace(target, old)
    try:
        if old is not None:
            mark_work(old)
        (staging / WORK_MARKER).unlink()
        os.replace(staging, target)
    except BaseException:
        # Ctrl-C (or an error) between the renames: the old directory goes back in this run. Left aside, an
        # unmarked one was never restored, and a marked one only by the next training.
        if old is not None and not target.exists():
            os.replace(old, target)
            (target / WORK_MARKER).unlink(missing_ok=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
