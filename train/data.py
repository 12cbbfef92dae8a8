"""Find, split and decode the photos of a dataset folder (layouts in docs/contracts.md).

Two layouts are accepted:
  ROOT/{Train,Validation[,Test]}/<class>/*   the prototype's split, used as is;
  ROOT/<class>/*                             split here, stratified, repeatable by seed.
Class names are the folder names, sorted. Every non-hidden file is tried as an
image; the ones that do not decode are skipped and listed, never fatal. What the
user cannot train on (no folder, no classes, one class, a class with nothing
decodable) is a UserError.
"""
from __future__ import annotations

import hashlib
import os
import unicodedata
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from knyang_cam.errors import UserError
from knyang_cam.finder_model import META_FILE as FINDER_META
from knyang_cam.model_dir import META_FILE, has_control
from knyang_cam.results import NOT_MINE, RESERVED_NAMES, SPLIT_NAMES, UNLABELED

from . import scenes

# What PIL raises for a file that is not a decodable image (truncated, corrupt, empty, bomb).
DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


class DatasetError(UserError):
    """A dataset the user cannot train on (no folder, no or one class, nothing decodable); exit status 2."""
    pass


@dataclass(frozen=True)
class Split:
    """One split's files and integer labels (indices into Dataset.classes)."""

    paths: tuple[Path, ...]
    labels: tuple[int, ...]

    def __post_init__(self):
        if len(self.paths) != len(self.labels):
            raise ValueError("paths and labels differ in length")

    def __len__(self) -> int:
        return len(self.paths)


@dataclass(frozen=True)
class Dataset:
    """A dataset folder's sorted class names and splits; `layout` 'split' (Train/Validation) or 'classes' (by seed)."""

    root: Path
    layout: str  # "split" (Train/Validation folders) or "classes" (split here by seed)
    classes: tuple[str, ...]
    train: Split
    validation: Split
    test: Split | None = None
    # Class folders without a file, which are no class: said so, since the user made each for a cat.
    empty: tuple[Path, ...] = ()
    # Photos beside the class folders, in no class: said so, since the user put them there to be learnt.
    loose: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Images:
    """Decoded, square, uint8 RGB images of one split with the files that were skipped.

    `photos`, when asked for (decode_split's `photo_side`), holds the same photos
    whole, at their own aspect ratio with the shorter side `photo_side` pixels: the
    source of the random and fixed square crops that show training what the app
    sees (a camera frame's centre square covers only part of a scene, anywhere).
    """

    pixels: np.ndarray  # [N, size, size, 3] uint8
    labels: np.ndarray  # [N] int32
    paths: tuple[Path, ...]
    skipped: tuple[tuple[Path, str], ...]  # (file, why)
    photos: tuple[np.ndarray, ...] | None = None  # [h, w, 3] uint8 each, min(h, w) == photo_side


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _subdirs(path: Path) -> list[Path]:
    return sorted((p for p in path.iterdir() if p.is_dir() and _visible(p)), key=lambda p: p.name)


def _files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*")
                  if p.is_file() and all(_visible(Path(part)) for part in p.relative_to(path).parts))


def class_files(folder: Path) -> dict[str, list[Path]]:
    """Files per class folder; the app's reserved folders (unlabeled/, not_mine/) are never classes."""
    return {d.name: _files(d) for d in _subdirs(folder) if d.name.lower() not in (UNLABELED, NOT_MINE)}


def split_folder(root: Path, name: str) -> Path | None:
    """The visible sub-folder of `root` called `name` in any letter case, or None when there is none."""
    for d in _subdirs(root):
        if d.name.lower() == name.lower():
            return d
    return None


# What a photo's name ends with; the split holds out only these (any other file is still tried as an image).
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".heic"}


def _rank(seed: int, name: str, burst: str) -> str:
    """A burst's place in its class's validation queue: fixed by seed, class and burst, whatever else is there."""
    return hashlib.sha1(f"{seed}:{name}:{burst}".encode()).hexdigest()


def _split_by_seed(by_class: dict[str, list[Path]], classes: Sequence[str],
                   fraction: float, seed: int) -> tuple[Split, Split]:
    """Hold out `fraction` of every class (at least one photo when it has two), whole bursts at a time.

    Photos of one burst (`1587034022066-3.jpg`, `-4.jpg`: folds.burst_of) are nearly the same
    picture, so they go to the same side; validation then measures new pictures. Bursts are ordered
    by a hash of the seed, class and burst, not shuffled: adding photos or a cat moves at most the
    bursts a new one takes the place of, so a retrain compares with the current model on mostly the
    same photos and reuses their features (a shuffle of the grown list moved most of a small class).
    """
    from .folds import burst_of

    train, val = ([], []), ([], [])
    for label, name in enumerate(classes):
        bursts: dict[str, list[Path]] = {}
        # A file not named as a photo (Thumbs.db, notes.txt), or an empty one (a copy that failed), stays on
        # the training side, where it is tried and listed as skipped: held out, it could take a small class's
        # only validation place.
        photos = [f for f in by_class[name] if f.suffix.lower() in PHOTO_SUFFIXES and _size(f)] or by_class[name]
        for f in photos:
            bursts.setdefault(burst_of(f), []).append(f)
        chunks = [bursts[key] for key in sorted(bursts, key=lambda key: _rank(seed, name, key))]
        files = [f for chunk in chunks for f in chunk]
        n_val = min(max(1, round(len(files) * fraction)), len(files) - 1) if len(files) > 1 else 0
        held: list[Path] = []
        for chunk in chunks:  # whole bursts, while they fit
            if len(held) + len(chunk) <= n_val:
                held += chunk
        if n_val and not held:  # every burst is larger than the share: only then is one cut in two
            held = min(chunks, key=len)[:n_val]
        held_set, photo_set = set(held), set(photos)  # once, not once per file
        rest = [f for f in files if f not in held_set] + [f for f in by_class[name] if f not in photo_set]
        for part, chunk in ((val, held), (train, rest)):
            part[0].extend(chunk)
            part[1].extend([label] * len(chunk))
    return (Split(tuple(train[0]), tuple(train[1])), Split(tuple(val[0]), tuple(val[1])))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # gone meanwhile: tried, and listed as skipped, like an empty one
        return 0


def _labelled(by_class: dict[str, list[Path]], classes: Sequence[str]) -> Split:
    paths, labels = [], []
    for label, name in enumerate(classes):
        files = by_class.get(name, [])
        paths += files
        labels += [label] * len(files)
    return Split(tuple(paths), tuple(labels))


def class_names(root: str | Path) -> tuple[str, ...]:
    """The classes with files in `root`'s Train folder (or `root` itself), without find_images' checks."""
    root = Path(root)
    files = class_files(split_folder(root, SPLIT_NAMES["train"]) or root)
    return tuple(name for name, f in files.items() if f)


def find_images(root: str | Path, validation_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """List the dataset's files per split and class; nothing is decoded yet."""
    root = Path(root)
    # os.path's tests, not Path's: they answer False for a name over 255 bytes (Path's raise OSError).
    if os.path.isfile(root):
        # Most often one photo of a cat's folder: the dataset is the folder above that one.
        above, cat = os.path.normpath(os.path.join(root, "..", "..")), os.path.basename(os.path.abspath(root.parent))
        raise DatasetError(f"--data {root} is a file: give the dataset folder, the one that holds a folder per cat "
                           f"(--data {above} if {cat}/ is one cat's photos), as <dataset>/<cat>/*.jpg or "
                           f"<dataset>/Train/<cat>/*.jpg")
    if not os.path.isdir(root):
        # Named by its flag, like the file above: the live retrain says app.dataset_root in its place.
        raise DatasetError(f"--data {root} not found (expected {root}/<class>/*.jpg "
                           f"or {root}/Train/<class>/*.jpg)")
    _check_split_folders(root)
    train_dir = split_folder(root, SPLIT_NAMES["train"])
    if train_dir is not None:
        by_split = {"train": class_files(train_dir)}
        for key in ("validation", "test"):
            d = split_folder(root, SPLIT_NAMES[key])
            if d is not None and not any(class_files(d).values()):
                d = None  # an empty Validation or Test folder is no split: Train is split by seed as without one
            if d is not None:
                by_split[key] = class_files(d)
        classes = tuple(name for name, files in by_split["train"].items() if files)
        _check_classes(root, train_dir, classes)
        for key in ("validation", "test"):  # their photos of a cat Train lacks would be dropped unseen
            unknown = sorted(set(n for n, f in by_split.get(key, {}).items() if f) - set(classes))
            if unknown:
                folder = split_folder(root, SPLIT_NAMES[key])
                into = train_dir / unknown[0] if len(unknown) == 1 else f"{train_dir}/<name>"
                raise DatasetError(f"{folder} has classes not in Train: {', '.join(unknown)}; a cat is learnt "
                                   f"from {train_dir} only: add photos of it to {into}/, or move its folder out "
                                   f"of {folder}")
        if "validation" in by_split:
            train, validation = _labelled(by_split["train"], classes), _labelled(by_split["validation"], classes)
            layout = "split"
        else:
            # A Train folder without Validation: hold out part of Train, as for the flat layout.
            train, validation = _split_by_seed(by_split["train"], classes, validation_fraction, seed)
            layout = "classes"
        test = _labelled(by_split["test"], classes) if "test" in by_split else None
        return Dataset(root, layout, classes, train, validation, test, _empty(train_dir, by_split["train"]),
                       _loose(root) + _loose(train_dir))
    by_class = class_files(root)
    classes = tuple(name for name, files in by_class.items() if files)
    _check_classes(root, root, classes)
    train, validation = _split_by_seed(by_class, classes, validation_fraction, seed)
    return Dataset(root, "classes", classes, train, validation, empty=_empty(root, by_class), loose=_loose(root))


def n_photos(n: int) -> str:
    """"1 photo", "3 photos": for the trainer's messages."""
    return f"{n} photo{'' if n == 1 else 's'}"


def _loose(folder: Path) -> tuple[Path, ...]:
    """The files named as photos directly in `folder` (Thumbs.db, notes.txt and the like are no one's photos)."""
    return tuple(sorted(p for p in folder.iterdir()
                        if p.is_file() and _visible(p) and p.suffix.lower() in PHOTO_SUFFIXES))


def _empty(folder: Path, by_class: dict[str, list[Path]]) -> tuple[Path, ...]:
    """The class folders in `folder` that hold no file (hidden ones aside)."""
    return tuple(folder / name for name, files in by_class.items() if not files)


def _is_model(folder: Path) -> bool:
    """Whether `folder` is a model or cat finder directory (its model.json or finder.json)."""
    return any((folder / name).is_file() for name in (META_FILE, FINDER_META))


def _check_split_folders(root: Path) -> None:
    """The layout is one or the other: no split folder twice (Train and train), no class folder with files
    beside a Train folder, no Validation or Test folder without one. Else photos would be left out unseen
    (or a split folder trained as a cat named Test)."""
    folders = _subdirs(root)
    splits = {name.lower() for name in SPLIT_NAMES.values()}
    for name in SPLIT_NAMES.values():
        twins = [d.name for d in folders if d.name.lower() == name.lower()]
        if len(twins) > 1:
            raise DatasetError(f"split folders {' and '.join(twins)} in {root} differ only in letter case: "
                               f"merge them into one")
    split = [d for d in folders if d.name.lower() in splits and _files(d)]  # an empty one is no split
    if not split:
        return
    if not any(d.name.lower() == SPLIT_NAMES["train"].lower() for d in split):
        raise DatasetError(f"{split[0]} has no Train folder beside it: put the training photos in "
                           f"{root}/Train/<cat>/, or rename {split[0].name} if it is a cat")
    loose = [d.name for d in folders if d.name.lower() not in splits | {UNLABELED, NOT_MINE} and _files(d)]
    if loose:
        raise DatasetError(f"{root} has class folders beside its Train folder, which training would leave out: "
                           f"{', '.join(loose)}; move them into {root}/Train/ (or out of the dataset)")


def _check_classes(root: Path, folder: Path, classes: Sequence[str]) -> None:
    # --data models: its model directories' files read as photos that do not decode, and the error said to
    # remove them. A model directory is never a cat's folder, nor a dataset.
    if model := next((d for d in (root, *(folder / c for c in classes)) if _is_model(d)), None):
        raise DatasetError(f"{model} is a model directory, not photos of a cat: give --data the folder that holds "
                           f"one folder of photos per cat")
    spaced = [c for c in classes if c != c.strip()]
    if spaced:  # "unknown " would read as the app's unknown; the label keys refuse such names too
        raise DatasetError(f"class folder name {spaced[0]!r} in {folder} starts or ends with a space: rename it")
    # model.json refuses such a name (it breaks the log's lines), which would come only at the export.
    if control := [c for c in classes if has_control(c)]:
        raise DatasetError(f"class folder name {control[0]!r} in {folder} holds a control character (a newline, "
                           f"a tab): rename it")
    # Eve and eve would be two cats to the model, one folder on a case-insensitive disk, and the
    # label keys' `n` refuses such a name too.
    # Zoë typed on Linux and Zoë copied from a Mac (NFC, NFD) are drawn alike but were two cats.
    first: dict[str, str] = {}
    for c in classes:
        if (twin := first.setdefault(unicodedata.normalize("NFC", c).casefold(), c)) != c:
            how = "letter case" if twin.casefold() == c.casefold() else "how their accents are encoded (NFC, NFD)"
            raise DatasetError(f"class folders {folder / twin} and {folder / c} differ only in {how}: "
                               f"one cat, one folder; merge them")
    reserved = [c for c in classes if c.lower() in RESERVED_NAMES]
    if reserved:
        raise DatasetError(f"class folder {folder / reserved[0]} has a reserved name ({', '.join(RESERVED_NAMES)} "
                           f"mean something else to the app): rename it")
    if not classes:
        crops = not_mine_files(root)
        if crops:
            # What the not-mine key saved on a fresh install. Crops alone cannot set the unknown cut:
            # it is chosen on my cats' photos scored against the other animals, and the old cut with
            # more animals can turn my cats near the crops unknown (a colour-feature gate with a
            # look-alike's crops added read even a reference as unknown).
            raise DatasetError(f"{root} has {len(crops)} not_mine crops but no photos of your cats, and training "
                               f"learns from both: put each cat's photos in {folder}/<name>/ (for the `t` "
                               f"retrain, set app.dataset_root to the dataset the model was trained on, "
                               f"README: Teach it live)")
        if folder == root and (photos := _loose(folder)):  # most likely one cat's folder, not the one above it
            raise DatasetError(f"{folder} holds {n_photos(len(photos))} but no class "
                               f"folders: give --data the folder that holds one folder per cat (such as "
                               f"{folder.parent}), or put each cat's photos in {folder}/<name>/")
        raise DatasetError(f"no class folders with files in {folder}: put each cat's photos in "
                           f"{folder}/<name>/")
    if len(classes) == 1:
        # "Photos of at least two cats" left a household of one cat nothing to do. A second cat's folder works:
        # strangers are turned away by the familiarity gate, which needs no class of theirs.
        raise DatasetError(f"only one class ({classes[0]}) in {folder}: a model tells cats apart, so it needs "
                           f"photos of at least two cats, one folder each; with one cat, add a folder of another "
                           f"cat (a neighbour's, a friend's): cats it knows neither of still read unknown")


def _reduced(img: Image.Image, size: int) -> Image.Image:
    """Let the decoder shrink big photos early (JPEG DCT scaling) so an 8000x6000 costs little."""
    if img.format == "JPEG":
        img.draft("RGB", (size * 2, size * 2))
    return img


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode to RGB; transparency is composited over white, as a viewer shows it."""
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale would clip to white in convert("RGB"); scale it to 8 bits first.
        a = np.asarray(img, dtype=np.float64)
        img = Image.fromarray((a * (255.0 / max(a.max(), 1.0))).astype(np.uint8))
    return img.convert("RGB")


def center_square(img: Image.Image, size: int) -> Image.Image:
    """The largest centred square, resized to size x size.

    This is the crop the app makes of every camera frame (knyang_cam's centre crop),
    so training sees photos framed the way the live classifier will.
    """
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return img.resize((size, size), Image.BILINEAR, box=(left, top, left + side, top + side),
                      reducing_gap=3.0)


# A whole photo kept for cropping is at most this many times as long as it is wide.
MAX_ASPECT = 2.0


def open_image(path: str | Path) -> Image.Image:
    """`Image.open` without PIL's DecompressionBombWarning, two lines of Python's own (its source line too)
    for each photo of 90 to 179 MP, a 108 MP phone's: such a photo decodes like any other."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(path)


def _open_upright(path: str | Path, size: int) -> Image.Image:
    """Decode one photo upright (EXIF orientation) as RGB, JPEGs reduced to no less than 2x `size`."""
    # PIL's own guard stays on: beyond ~179 MP it raises DecompressionBombError (skipped
    # and listed); an ordinary 48 MP camera photo is far below and JPEGs decode reduced.
    with open_image(path) as img:
        img = _reduced(img, size)
        img.load()
        return to_rgb(ImageOps.exif_transpose(img))


def whole_photo(img: Image.Image, side: int) -> np.ndarray:
    """The photo at its own aspect ratio (capped at MAX_ASPECT, centred) with the shorter side `side`."""
    w, h = img.size
    short = min(w, h)
    cw, ch = min(w, int(short * MAX_ASPECT)), min(h, int(short * MAX_ASPECT))
    left, top = (w - cw) // 2, (h - ch) // 2
    scale = side / short
    out = (max(side, round(cw * scale)), max(side, round(ch * scale)))
    return np.asarray(img.resize(out, Image.BILINEAR, box=(left, top, left + cw, top + ch),
                                 reducing_gap=3.0), dtype=np.uint8)


def load_image(path: str | Path, size: int) -> np.ndarray:
    """Decode one photo upright (EXIF orientation) as a [size, size, 3] uint8 RGB array.

    Raises OSError / ValueError / PIL errors for anything that is not a decodable image.
    """
    return np.asarray(center_square(_open_upright(path, size), size), dtype=np.uint8)


def load_photo(path: str | Path, side: int) -> np.ndarray:
    """Decode one photo upright, whole (see `whole_photo`), the shorter side `side` pixels."""
    return whole_photo(_open_upright(path, side // 2 + 1), side)


def decode_split(split: Split, classes: Sequence[str], size: int,
                 progress: Callable[[int, int], None] | None = None,
                 photo_side: int | None = None) -> Images:
    """Decode every file of `split`; undecodable ones are skipped and returned in `skipped`.

    With `photo_side`, each photo is also kept whole (Images.photos) from the same decode.
    """
    pixels, photos, labels, paths, skipped = [], [], [], [], []
    draft = max(size, (photo_side or 0) // 2 + 1)
    for i, (path, label) in enumerate(zip(split.paths, split.labels)):
        try:
            img = _open_upright(path, draft)
            square = np.asarray(center_square(img, size), dtype=np.uint8)
            if photo_side:
                photos.append(whole_photo(img, photo_side))
            pixels.append(square)
            labels.append(label)
            paths.append(path)
        except DECODE_ERRORS as e:
            skipped.append((path, why(e, path)))
        if progress is not None:
            progress(i + 1, len(split))
    array = np.stack(pixels) if pixels else np.zeros((0, size, size, 3), np.uint8)
    return Images(array, np.asarray(labels, np.int32), tuple(paths), tuple(skipped),
                  tuple(photos) if photo_side else None)


@dataclass(frozen=True)
class View:
    """A square crop of a whole photo: side `scale` x the shorter side, its centre moved by
    (`dx`, `dy`) x half the room the square has to move along each axis (-1 left/top, 1 right/bottom),
    mirrored left to right when `flip`; with `scene` >= 0, framed in drawn scene number `scene`
    (train/scenes.py); turned `turn` quarter turns anticlockwise before the mirroring (a camera on its side or
    upside down)."""

    scale: float
    dx: float = 0.0
    dy: float = 0.0
    flip: bool = False
    scene: int = -1
    low: int = 0  # > 0: shrunk to this many pixels a side and JPEG-compressed, then back (a small cat on video)
    turn: int = 0

    def __post_init__(self):
        if not 0.0 < self.scale <= 1.0:
            raise ValueError(f"scale must be in (0, 1], got {self.scale}")
        if not (-1.0 <= self.dx <= 1.0 and -1.0 <= self.dy <= 1.0):
            raise ValueError(f"dx, dy must be in [-1, 1], got {self.dx}, {self.dy}")
        if self.turn not in range(4):
            raise ValueError(f"turn must be 0-3 quarter turns, got {self.turn}")

    @property
    def name(self) -> str:
        """A short id of the view (`z0.8x-0.6y0.6f`), the same for equal views: part of the feature cache's key."""
        framed = f"b{scenes.VERSION}s{self.scene}" if self.scene >= 0 else ""
        low = f"l{self.low}q{LOW_QUALITY}" if self.low else ""
        turned = f"r{self.turn}" if self.turn else ""
        return f"z{self.scale:g}x{self.dx:g}y{self.dy:g}" + framed + ("f" if self.flip else "") + turned + low


def crop_view(photo: np.ndarray, view: View, size: int) -> np.ndarray:
    """`view` of a whole photo as a [size, size, 3] uint8 square (resized the way the app does)."""
    import cv2

    h, w = photo.shape[:2]
    side = max(1, int(round(min(h, w) * view.scale)))
    x = int(round((w - side) / 2 * (1 + view.dx)))
    y = int(round((h - side) / 2 * (1 + view.dy)))
    patch = photo[y:y + side, x:x + side]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    square = cv2.resize(patch, (size, size), interpolation=interp)
    if view.scene >= 0:
        square = scenes.framed(square, view.scene)
    if view.turn:
        square = np.rot90(square, view.turn)
    if view.flip:  # after the turn: the mirror image of what the camera shows, as the model's own mirror
        square = square[:, ::-1]
    square = np.ascontiguousarray(square)
    return low_quality(square, view.low) if view.low else square


# The JPEG quality of a `low` view: on 640x480 pan/zoom frames OpenCV's mp4v video loses about as much
# (35 dB PSNR against JPEG 60's 34.9); a little lower stands for webcams that compress harder.
LOW_QUALITY = 50


def low_quality(square: np.ndarray, side: int) -> np.ndarray:
    """An RGB square as a video shows a cat `side` pixels tall: shrunk, compressed, and resized back as the app does."""
    import cv2

    size = square.shape[0]
    small = cv2.resize(square, (side, side), interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", small[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, LOW_QUALITY])
    small = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[:, :, ::-1]
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)


# Phones save HEIC; Pillow reads it only with a plugin (pillow-heif) that is not installed with knyang-cam.
HEIC_SUFFIXES = (".heic", ".heif")
HEIC_WHY = ("a HEIC photo, which is not read here: save it as JPEG (iPhone: Settings > Camera > Formats > "
            "Most Compatible)")


def why(e: Exception, path: str | Path | None = None) -> str:
    """The reason listed for a skipped file: the first line of `e` (its type name when empty), PIL's suffix cut;
    for a HEIC `path` Pillow cannot identify, what to do instead."""
    if isinstance(e, UnidentifiedImageError) and path is not None:
        if Path(path).suffix.lower() in HEIC_SUFFIXES:
            return HEIC_WHY
        if os.path.isfile(path) and not os.path.getsize(path):
            return "an empty file (0 bytes): a copy or download that did not finish"
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text.replace(" (PIL.UnidentifiedImageError)", "")


def require_every_class(labels: np.ndarray, classes: Sequence[str], what: str, root: Path,
                        skipped: Sequence[tuple[Path, str]] = (), split: Split | None = None) -> None:
    """Training needs at least one decodable photo of every class; the error names the class's `skipped`
    files of `split`."""
    counts = np.bincount(labels, minlength=len(classes))
    empty = [name for name, n in zip(classes, counts) if n == 0]
    if empty:
        owner = dict(zip(split.paths, split.labels)) if split is not None else {}
        labels_of_empty = {classes.index(c) for c in empty}
        raise no_decodable(empty, what, root, [(p, w) for p, w in skipped if owner.get(Path(p)) in labels_of_empty])


def no_decodable(classes: Sequence[str], what: str, root: Path, bad: Sequence[tuple[Path, str]]) -> DatasetError:
    """The error for `classes` without a decodable photo in the `what` split, naming their files that failed
    and why: a truncated photo looks like a photo in the folder, so "no decodable image" alone puzzled."""
    where = f"no decodable image for class {', '.join(classes)} in the {what} split of {root}"
    if not bad:
        return DatasetError(f"{where}: add JPEG/PNG photos or remove the folder")
    path, reason = bad[0]
    reason = reason.replace(f" '{path}'", "")  # PIL's message repeats the path
    if len(bad) == 1:
        return DatasetError(f"{where}: {path} does not decode ({reason}): replace or remove it, or add JPEG/PNG photos")
    return DatasetError(f"{where}: its {len(bad)} files there do not decode, such as {path} ({reason}): replace or "
                        f"remove them, or add JPEG/PNG photos")


def not_mine_files(root: str | Path) -> list[Path]:
    """Crops the user marked "not one of my cats" (<root>/not_mine/, any depth): negatives, never a class."""
    from knyang_cam.results import NOT_MINE

    root = Path(root)
    folder = next((d for d in _subdirs(root) if d.name.lower() == NOT_MINE), None) if root.is_dir() else None
    return _files(folder) if folder is not None else []
