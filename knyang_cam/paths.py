"""Every path the program writes: checked before any work starts, and written through temp-and-rename.

The rule is "never destroy what the user had":
- an output is never an input nor another output (the same resolved path, or the same file by inode);
- an output file is absent or a regular file (not a folder, not a device) and its folder can be made;
- a report folder holds no file of the names the app writes unless an earlier report wrote it;
- a model directory is replaced only as knyang_cam.model_out allows;
- dataset saves stay inside the dataset root, symlinks resolved.
Files are written under a hidden temporary name beside the target and renamed into place at the
end (knyang_cam.atomic); what a killed process left behind is swept by the next run, which touches
only what it can tell it made (a temp file's name).
"""
from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .atomic import pid_alive, temp_beside, temp_pid
from .errors import UserError

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv")  # containers OpenCV writes with mp4v
# Names a prediction log goes by: under another flag, --log was meant.
LOG_SUFFIXES = (".jsonl", ".json")
REPORT_FILES = ("appearances.csv", "timeline.png", "least_confident.png")
# Written into a report folder with the report: its files are ours to replace next time.
REPORT_MARKER = ".knyang-cam-report"


class PathError(UserError):
    """A path the program would write is unsafe or unusable."""


class UnsafeName(ValueError):
    """A folder name that is not a plain name, or that resolves outside its root."""


def resolved(path: str | os.PathLike) -> Path:
    """The absolute path with symlinks resolved (the parts that exist)."""
    return Path(os.path.realpath(Path(path).expanduser()))


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when `a` and `b` name one file: the same resolved path, or the same inode (hard links)."""
    try:
        if os.path.samefile(a, b):
            return True
    except OSError:
        pass
    return resolved(a) == resolved(b)


def is_within(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """True when `path` is `root` or lies under it, symlinks resolved."""
    p, r = resolved(path), resolved(root)
    return p == r or r in p.parents


def plain_child(root: str | os.PathLike, name: str) -> Path:
    """`root/name` (root resolved), or UnsafeName when `name` could point anywhere else.

    Checked twice: the name itself (no separators, no `..`, not hidden, not blank) and the
    resolved path, which also catches a folder that is a symlink out of the root.
    """
    bad = (not name or name != name.strip() or name.startswith(".")
           or any(c in name for c in "/\\:\0"))
    base = resolved(root)
    target = base / name
    if bad or resolved(target).parent != base:
        raise UnsafeName(f"folder name {name!r} is not a plain folder inside {root}")
    return target


def utf8_name(path: str | os.PathLike) -> bool:
    """True when `path` encodes as UTF-8.

    A name holding other bytes (copied from an old Windows share or zip: `caf\\xe9.jpg`) reaches Python with
    lone surrogates in it, which OpenCV's bindings answer with a crash (SIGSEGV) and LiteRT's with a
    TypeError: such a path is read through Python, or refused, before it gets there.
    """
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(path: str | os.PathLike) -> str:
    """`path` for a message, its bytes that are not UTF-8 written as `\\xe9`."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _first_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_parent(flag: str, path: Path) -> None:
    above = _first_existing(path.parent)
    if not above.is_dir():
        raise PathError(f"cannot write {flag} {path}: {above} is a file, not a folder")


def check_writable(flag: str, path: Path) -> None:
    """PathError unless a file can be made in `path`'s folder, or in the nearest folder above it that
    exists: a read-only place is found before any work, not after it."""
    try:
        temp_beside(_first_existing(path.parent) / "knyang-cam-probe").unlink()
    except OSError as e:
        raise PathError(f"cannot write {flag} {path}: {e.strerror or e}") from None


def check_not_empty(flag: str, path) -> Path:
    if path is None or not str(path).strip():
        raise PathError(f"{flag} is empty: give a path")
    return Path(path).expanduser()


NAME_MAX = 255  # bytes in a file or folder name (ext4, XFS, Btrfs, tmpfs, APFS)
# The most the hidden names written beside an output add to its name: temp_beside's .NAME.tmp-PID-RANDOM
# (a 7-digit PID, the kernel's most), longer than a model directory's .NAME.staging-PID and .NAME.lock.
BESIDE_EXTRA = len(".") + len(".tmp-1234567-") + 8


def check_name(flag: str, p: Path) -> None:
    """PathError for an output name the system refuses, or one too long for the hidden files and folders
    written beside it: they were an OSError traceback ('File name too long'), the latter after all the work."""
    if any(len(os.fsencode(part)) > NAME_MAX for part in p.parts):  # worded as the app's OSError of it
        raise PathError(f"cannot use {flag} {printable(p)}: File name too long")
    if (n := len(os.fsencode(p.name))) > NAME_MAX - BESIDE_EXTRA:
        raise PathError(f"{flag} {printable(p)}: its name is {n} bytes, and the hidden files written beside it "
                        f"while it is written need it at most {NAME_MAX - BESIDE_EXTRA}: choose a shorter name")


# Names of this process's open descriptors: /dev/stdout is a link to /proc/self/fd/1, which is a link to whatever
# the shell redirected it to, a regular file too (`> run.txt`).
_STD_NAMES = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}
_FD_NAME = re.compile(r"/(?:dev/fd|proc/(?:self|thread-self|(?P<pid>\d+))/fd)/(?P<fd>\d+)")
_MAX_LINKS = 40  # as the kernel's ELOOP


def descriptor(path: str | os.PathLike) -> int | None:
    """The descriptor number `path` names (/dev/stdout, /dev/fd/3, /proc/self/fd/1, or a link to one), or None.

    Followed link by link, not resolved: resolving /dev/stdout when the shell sent stdout to a file gives that
    file, and a file is replaced through a temporary one beside it, here a temporary one in /dev renamed over
    /dev/stdout (as root) or refused; neither writes where the user asked.
    """
    p = os.path.abspath(os.path.expanduser(path))
    for _ in range(_MAX_LINKS):
        if p in _STD_NAMES:
            return _STD_NAMES[p]
        m = _FD_NAME.fullmatch(p)
        if m and m["pid"] in (None, str(os.getpid())):
            return int(m["fd"])
        if not os.path.islink(p):
            return None
        p = os.path.normpath(os.path.join(os.path.dirname(p), os.readlink(p)))
    return None


def is_open(fd: int) -> bool:
    """True when descriptor `fd` is open in this process."""
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def is_stream(path: Path) -> bool:
    """An open descriptor's name (/dev/stdout), an existing device or pipe (a FIFO): written directly, there
    is nothing to replace."""
    fd = descriptor(path)
    if fd is not None:
        return is_open(fd)
    return path.exists() and not path.is_file() and not path.is_dir()


def check_file(flag: str, path, suffixes: Sequence[str] | None = None, streams: bool = False) -> Path:
    """An output file's path, or PathError: not a folder, a device only where `streams` allows it,
    a known suffix, a folder that can be made."""
    p = check_not_empty(flag, path)
    check_name(flag, p)
    example = f"run{suffixes[0]}" if suffixes else "out.json"
    if p.is_dir():
        raise PathError(f"{flag} {p} is a folder: give a file name, e.g. {p / example}")
    if streams and is_stream(p):
        return p
    if (fd := descriptor(p)) is not None:
        why = "a descriptor, not a file" if is_open(fd) else f"descriptor {fd}, which is not open"
        raise PathError(f"{flag} {p} names {why}: give a file name")
    if p.exists() and not p.is_file():
        raise PathError(f"{flag} {p} is not a regular file (a device or a pipe): give a file name")
    if suffixes and p.suffix.lower() not in suffixes:
        what = f"extension {p.suffix!r}" if p.suffix else "no extension"
        hint = " (--log writes the prediction log)" if p.suffix.lower() in LOG_SUFFIXES else ""
        raise PathError(f"{flag} {p} has {what}: use one of {', '.join(suffixes)}{hint}")
    check_parent(flag, p)
    return p


def check_report_dir(flag: str, path) -> Path:
    """A report folder's path, or PathError: a folder (or none yet) holding no files the app did not write."""
    p = check_not_empty(flag, path)
    check_name(flag, p)
    if p.exists() and not p.is_dir():
        raise PathError(f"{flag} {p} is a file, not a folder: give a folder for the report")
    if not p.exists() and p.suffix.lower() in VIDEO_SUFFIXES + LOG_SUFFIXES:
        # A folder named out.mp4 is --report typed for --output (or --log): nobody names a new folder so.
        meant = "--log" if p.suffix.lower() in LOG_SUFFIXES else "--output"
        raise PathError(f"{flag} {p} names a folder for the report (a timeline, a CSV, a contact sheet), but reads "
                        f"like a file: for the annotated video or the log give {meant} {p}; for the report, a "
                        f"folder name such as {p.with_suffix('')}")
    check_parent(flag, p)
    if odd := [n for n in REPORT_FILES if (p / n).exists() and not (p / n).is_file()]:
        raise PathError(f"{flag} {p / odd[0]} is a folder or a device, not a report file: choose another folder")
    if p.is_dir() and not (p / REPORT_MARKER).exists():
        clash = [n for n in REPORT_FILES if (p / n).exists() or (p / n).is_symlink()]
        if clash:
            raise PathError(f"{flag} {p} already holds {', '.join(clash)}, not written by knyang-cam: "
                            f"choose a new or empty folder")
    return p


@dataclass(frozen=True)
class Input:
    """A path the run reads and its command-line `flag`; `folder`: a directory no output may be written into;
    `pattern`: a glob (`path`) that no output may match."""

    flag: str
    path: Path
    folder: bool = False
    pattern: bool = False


@dataclass(frozen=True)
class AppPaths:
    """The checked outputs of one app run (None where not asked for)."""

    output: Path | None = None
    log: Path | None = None
    report: Path | None = None


def is_camera_index(spec: str) -> bool:
    """True for a webcam index: ASCII digits only (str.isdigit also takes '²', which int() refuses)."""
    return spec.isascii() and spec.isdigit()


def source_inputs(spec: str) -> list[Input]:
    """The files or folder a --source reads (none for a camera index or 'synthetic')."""
    if is_camera_index(spec) or spec == "synthetic":
        return []
    p = Path(spec).expanduser()
    if p.is_dir():
        return [Input("--source", p, folder=True)]
    if p.exists():
        return [Input("--source", p)]
    if glob.has_magic(spec):
        return [Input("--source", Path(spec), pattern=True)] + [Input("--source", Path(f)) for f in glob.glob(spec)]
    return []


def matches(pattern: Path, path: Path) -> bool:
    """True when glob `pattern` takes in `path`, once it exists."""
    return Path(os.path.abspath(path)).match(os.path.abspath(pattern))


def check_app(inputs: Sequence[Input], output=None, log=None, report=None) -> AppPaths:
    """Check the app's outputs against its inputs and each other; raises PathError with one line."""
    files: list[tuple[str, Path]] = []
    if output is not None:
        output = check_file("--output", output, VIDEO_SUFFIXES)
        if not utf8_name(output):  # OpenCV writes the video under that name
            raise PathError(f"--output {printable(output)} is not a valid UTF-8 name, which OpenCV cannot write: "
                            f"choose another name")
        files.append(("--output", output))
    if log is not None:
        log = check_file("--log", log, streams=True)
        files.append(("--log", log))
    if report is not None:
        report = check_report_dir("--report", report)
        for flag, path in files:
            if same_file(path, report):
                raise PathError(f"{flag} {path} is the --report folder: give each its own name")
        files += [("--report", report / name) for name in REPORT_FILES]
        for i in inputs:
            if i.folder and same_file(report, i.path):
                raise PathError(f"--report {report} is the {i.flag} folder: give the report its own folder")
            # Its pictures would be read from there: as photos of a cat (a dataset's class folder), as
            # frames (the photos' folder), as files a model directory may not hold (its report/).
            if i.folder and is_within(report, i.path):
                raise PathError(f"--report {report} is inside the {i.flag} folder {i.path}: "
                                f"give the report a folder outside it")
    for n, (flag, path) in enumerate(files):
        for other_flag, other in files[:n]:
            if same_file(path, other):
                raise PathError(f"{other_flag} and {flag} are the same file {path}: give each its own name")
        for i in inputs:
            # Not even a new file: the folder's reader would meet it (a model directory holding it is one
            # training refuses to replace; a class folder's is tried as a photo of that cat).
            if i.pattern:
                # As for a folder, even a new file: the report's pictures in the glob's reach were read as
                # photos by the next run (or made it refuse its outputs as inputs).
                if matches(i.path, path):
                    raise PathError(f"{flag} {path} is one of the files {i.flag} '{i.path}' names: "
                                    f"choose a place the glob does not reach")
            elif i.folder:
                if is_within(path, i.path):
                    raise PathError(f"{flag} {path} is in the {i.flag} folder {i.path}: "
                                    f"choose a folder outside it")
            elif same_file(path, i.path):
                raise PathError(f"{flag} {path} is the {i.flag} file: choose another name")
    return AppPaths(output, log, report)


# The folders the keys write into while the app runs, and what each key saves there.
KEY_FOLDERS = (("app.dataset_root", "the label keys save photos"),
               ("app.snapshots_dir", "the snapshot key saves frames"),
               ("retrain.models_dir", "the retrain key writes models"))


def check_app_folders(dataset_root, snapshots_dir, models_dir, model: Path, finder: Path) -> None:
    """PathError unless the folders the keys write into (KEY_FOLDERS) are folders or none yet, and the label
    keys' stay out of the model directories and apart.

    The dataset and the snapshots are written into while the app runs: inside a model directory their
    files make it one training refuses to replace; a model directory inside the dataset is read as a cat
    folder (and a retrain refuses a dataset holding its --out); snapshots inside the dataset are read as
    a cat's photos, or make a split dataset one that training refuses. A setting that is, or lies under, no
    folder (a file, a device, a broken link) was found only when its key was pressed, as a toast mid-run, long
    after the config could be mended.
    """
    dataset, snaps, models = (Path(p).expanduser() for p in (dataset_root, snapshots_dir, models_dir))
    for flag, folder in (("app.dataset_root", dataset), ("app.snapshots_dir", snaps)):
        for what, other in (("--model", model), ("cat finder", finder)):
            if is_within(folder, other):
                raise PathError(f"{flag} {folder} is inside the {what} folder {other}: the label keys would "
                                f"write into a model directory; choose a folder outside it")
    if is_within(model, dataset):
        raise PathError(f"--model {model} is inside app.dataset_root {dataset}: training would read the "
                        f"model directory as a cat; keep models outside the dataset")
    if is_within(snaps, dataset) and resolved(snaps) != resolved(dataset):
        raise PathError(f"app.snapshots_dir {snaps} is inside app.dataset_root {dataset}: training would read "
                        f"the full frames as a cat's photos; give the snapshots a folder outside the dataset")
    for (key, what), folder in zip(KEY_FOLDERS, (dataset, snaps, models)):
        there = next((p for p in (folder, *folder.parents) if os.path.lexists(p)), None)
        if there is not None and not os.path.isdir(there):
            file = os.path.isfile(there)  # else a device, a socket or a broken link
            if there == folder:
                where = "is a file" if file else "is not a folder"
            else:
                where = f"is under the file {there}" if file else f"is under {there}, which is not a folder"
            raise PathError(f"{key} {folder} {where}: {what} into a folder; give a folder there")


def check_cache(flag: str, cache: Path | None, folders: Sequence[tuple[str, Path]]) -> None:
    """PathError when the feature cache (`flag`: the setting that named it) is inside one of the `folders`:
    written during training, it would become a photo of a cat, or a file of the user's in a model folder; or when
    it is a file: each cache write failed with a warning, and every run computed every crop again."""
    if cache is not None and os.path.exists(cache) and not os.path.isdir(cache):
        raise PathError(f"{flag} {cache} is a file, not a folder: give a folder for the feature cache")
    for what, folder in folders:
        if cache is not None and is_within(cache, folder):
            raise PathError(f"{flag} {cache} is inside {what} {folder}: keep the feature cache in a folder of its own")


def make_folder(flag: str, folder: Path, file: Path | None = None) -> Path | None:
    """Create `folder` (and parents) and prove a file can be written in it, or raise PathError naming
    `file` (the one the user gave, in `folder`) where there is one: `--log run.jsonl` named as `.` is unclear.

    Returns the outermost folder it created (None: all were there), for `remove_made`.
    """
    made = outermost_missing(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".knyang-cam-probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as e:
        where = folder if file is None else f"{file} (its folder {folder})"
        raise PathError(f"cannot write {flag} {where}: {e.strerror or e}") from None
    return made


def outermost_missing(folder: Path) -> Path | None:
    return next((p for p in (*reversed(folder.parents), folder) if not p.exists()), None)


def remove_made(folder: Path, made: Path | None) -> None:
    """Remove `folder` and its parents up to `made` (make_folder's) while they are empty: a run that
    wrote nothing leaves no empty folders behind."""
    if made is None:
        return
    for p in (folder, *folder.parents):
        try:
            p.rmdir()
        except OSError:  # not empty (another run's file, the user's), or gone
            return
        if p == made:
            return


def mark_report(folder: Path) -> None:
    """Claim a written report folder's files as the app's own, so the next run may replace them."""
    (folder / REPORT_MARKER).touch()


def sweep_temp(target: Path) -> list[Path]:
    """Remove the temporary files beside `target` left by processes that are gone; returns them."""
    removed = []
    pattern = f".{glob.escape(target.stem)}.tmp-*{glob.escape(target.suffix)}"
    for tmp in target.parent.glob(pattern):
        pid = temp_pid(tmp.name)
        if pid is not None and pid != os.getpid() and not pid_alive(pid):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed
