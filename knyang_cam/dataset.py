"""The snapshot and label keys: frames and crops saved as training images, off the loop's thread.

Layout written (the dataset contract of docs/contracts.md, so `python -m train
--data ROOT` reads it back): labelled crops go to `ROOT/Train/<class>/<time>.jpg`, or where
the dataset already keeps its classes (a `train` folder in any case, or `ROOT/<class>/` in the
flat layout: a new `Train/` there would hide every earlier photo from training);
`ROOT/unlabeled/<time>.jpg` for crops to sort later, `ROOT/not_mine/<time>.jpg` for
crops of cats that are not the user's (negatives for training), and full frames in
the snapshots folder. Every file is written atomically under a fresh name; a folder
that is not a plain name, or that is a symlink out of ROOT, is refused, so nothing
lands outside ROOT.
"""
from __future__ import annotations

import os
import queue
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from .atomic import write_new
from .paths import NAME_MAX, UnsafeName, plain_child
from .results import RESERVED_NAMES, SPLIT_NAMES, UNLABELED
from .sources import IMAGE_SUFFIXES

SPLITS = tuple(SPLIT_NAMES)
TRAIN = SPLIT_NAMES["train"]
JPEG_QUALITY = 95


def classes_folder(root: Path) -> Path:
    """Where `root` keeps its class folders: its train split folder (any case); `root` itself when it holds
    class folders with files and no split folders (the flat layout); else `root/Train` (a new dataset)."""
    try:
        folders = [d for d in Path(root).iterdir() if d.is_dir() and not d.name.startswith(".")]
    except OSError:  # no root yet, or unreadable: the save itself reports it
        return Path(root) / TRAIN
    if train := [d for d in folders if d.name.lower() == "train"]:
        return train[0]
    flat = any(d.name.lower() not in RESERVED_NAMES + SPLITS and any(f.is_file() for f in d.rglob("*"))
               for d in folders)
    return Path(root) if flat and not any(d.name.lower() in SPLITS for d in folders) else Path(root) / TRAIN


def class_dir(root: Path, name: str) -> Path:
    """The folder of class `name` (see classes_folder), or UnsafeName when `name` could point anywhere else
    (paths.plain_child)."""
    # Checked here: the OS's "File name too long (ROOT)" read as if the dataset were at fault.
    if (size := len(os.fsencode(name))) > NAME_MAX:
        raise UnsafeName(f"a name of {size} bytes ({name[:12]}...): a folder's name has at most {NAME_MAX}")
    try:
        return plain_child(classes_folder(root), name)
    except UnsafeName:
        raise UnsafeName(f"class name {name!r} is not a plain folder name") from None


def _count_images(folder: Path) -> int:
    try:
        return sum(1 for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                   and not p.name.startswith("."))
    except OSError:
        return 0


def _folders_beyond(root: Path, classes: Sequence[str]) -> tuple[str, ...]:
    """The dataset's class folders that are none of `classes`, sorted: a cat added with `n` in an earlier run, or
    put there by hand, that the model does not know yet. The next retrain learns them, so they get keys now."""
    at = classes_folder(root)
    # A split layout's Train/ may hold a cat named "Test"; a flat one's Test/ is no cat.
    taken = {c.lower() for c in classes} | set(RESERVED_NAMES) | (set(SPLITS) if at == root else set())
    try:
        names = sorted(d.name for d in at.iterdir() if d.is_dir() and not d.name.startswith(".")
                       and d.name.lower() not in taken)
    except OSError:  # no dataset yet
        return ()
    beyond = []
    for name in names:
        try:
            plain_child(at, name)  # a link out of the dataset is no cat's folder
        except UnsafeName:
            continue
        beyond.append(name)
    return tuple(beyond)


class Saver:
    """Queues saves for a writer thread, so a slow disk never stalls the frame loop.

    `poll()` returns the messages of finished saves (or their errors) for the
    overlay's toast; `counts` holds the images per class in the dataset folder.
    """

    def __init__(self, dataset_root: str | Path, snapshots_dir: str | Path, classes: Sequence[str]):
        # A config's "~/cats" is the user's folder, as for every other path: not a folder named "~" here.
        self.root = Path(dataset_root).expanduser()
        self.snapshots = Path(snapshots_dir).expanduser()
        self.classes = tuple(classes) + _folders_beyond(self.root, classes)
        self.counts = {name: self._count(name) for name in self.classes}
        self.labelled = 0  # crops saved under a class name: what retrain.auto_after counts
        self._jobs: queue.Queue = queue.Queue()
        self._messages: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._work, daemon=True, name="saver")
        self._thread.start()

    def add_class(self, name: str) -> str:
        """Make `name` the next number key (its folder is created now); returns a message."""
        name = name.strip()
        if name.lower() in RESERVED_NAMES:
            return f"not added: {name} is a reserved name ({', '.join(RESERVED_NAMES)})"
        same = [c for c in self.classes if c.lower() == name.lower()]  # one folder on macOS and Windows
        if same:
            return f"{same[0]} is already key {self.classes.index(same[0]) + 1}"
        at = classes_folder(self.root)
        if name.lower() in SPLITS and at == self.root:
            # Flat layout: ROOT/Train/ (or Validation/, Test/) with a photo in it turns the dataset into a split
            # one: the next crops go to ROOT/Train/<cat>/ and training refuses the class folders beside it.
            return f"not added: {name} is a split folder's name ({', '.join(SPLIT_NAMES.values())}) in {self.root}"
        try:  # a folder of the dataset that is no key yet (a cat the model does not know) in another letter case
            twin = next((d.name for d in at.iterdir() if d.is_dir() and d.name != name
                         and d.name.lower() == name.lower()), None)
        except OSError:
            twin = None
        # The folder's own spelling: a name typed in the window is easily in another case (OpenCV's Qt window gives
        # a capital only for the letter right after Shift), and nabi beside Nabi would make every retrain refuse
        # the dataset.
        name = twin or name
        try:
            folder = class_dir(self.root, name)
            folder.mkdir(parents=True, exist_ok=True)
        except UnsafeName as e:
            return f"not added: {e}"
        except OSError as e:
            return f"not added: {e.strerror or e} ({self.root})"
        self.classes += (name,)
        self.counts[name] = _count_images(folder)
        n = len(self.classes)
        return f"added {name}: key {n}" if n <= 9 else f"added {name} (only 1-9 have keys)"

    def _count(self, name: str) -> int:
        """The photos in class `name`'s folder now (0 for a name that is no plain folder name)."""
        try:
            return _count_images(class_dir(self.root, name))
        except UnsafeName:
            return 0

    def set_classes(self, classes: Sequence[str]) -> None:
        """A new model's classes that have no key yet get the next ones: a key never changes its cat."""
        new = tuple(c for c in classes if c not in self.classes)
        self.classes += new
        for name in new:  # a cat the retrain found in the dataset has its photos there already
            self.counts[name] = self._count(name)

    def snapshot(self, frame: np.ndarray) -> None:
        """Queue a copy of the whole `frame` (BGR) to save under the snapshots folder; poll() reports it."""
        self._jobs.put((self.snapshots, None, frame.copy()))

    def label(self, class_index: int | None, crop: np.ndarray) -> None:
        """Save `crop` as class `class_index` (0-based), or as unlabeled when None."""
        if class_index is None:
            self.set_aside(UNLABELED, crop)
            return
        if class_index >= len(self.classes):
            self._messages.put(f"no class {class_index + 1}: there are {len(self.classes)} (n adds one)")
            return
        name = self.classes[class_index]
        try:
            folder = class_dir(self.root, name)
        except UnsafeName as e:
            self._messages.put(f"not saved: {e}")
            return
        self._jobs.put((folder, name, crop.copy()))

    def set_aside(self, folder: str, crop: np.ndarray) -> None:
        """Save `crop` into a reserved folder of the root (UNLABELED, NOT_MINE); refused when that
        folder is a symlink out of the root, like the class folders."""
        try:
            target = plain_child(self.root, folder)
        except UnsafeName as e:
            self._messages.put(f"not saved: {e}")
            return
        self._jobs.put((target, None, crop.copy()))

    def poll(self) -> list[str]:
        """The messages of the saves finished since the last call, oldest first; never blocks."""
        out = []
        while True:
            try:
                out.append(self._messages.get_nowait())
            except queue.Empty:
                return out

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                self._messages.put(self._save(*job))
            finally:
                self._jobs.task_done()

    def _save(self, folder: Path, name: str | None, image: np.ndarray) -> str:
        try:
            ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if not ok:
                return "not saved: the image could not be encoded"
            folder.mkdir(parents=True, exist_ok=True)
            stem = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
            path = write_new(folder, stem, ".jpg", data.tobytes())
        except OSError as e:
            # The reason first: on a narrow window the toast cuts the end of a long path.
            return f"not saved: {e.strerror or e} ({folder})"
        if name is None:
            return f"saved {path}"
        self.counts[name] += 1
        self.labelled += 1
        return f"saved {name} ({self.counts[name]})"

    def close(self) -> None:
        """Finish every queued save, then stop the writer."""
        self._jobs.put(None)
        self._thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
