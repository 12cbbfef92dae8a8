"""Backbone features computed once per photo and kept on disk, so head training costs milliseconds.

A head-only retrain (a few new photos added to a dataset) then only runs the
backbone on the new files. The cache is one .npz per backbone identity (weights
content, image size, alpha); an entry is keyed by the file's content, so an edited
or replaced photo is computed again, while a copied, moved or touched one is not.
"""
from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from knyang_cam.atomic import atomic_path

from .data import DECODE_ERRORS, Images, View, crop_view, load_image, load_photo, why
from .fit import random_views
from .model import Backbone, infer

# Photos are kept whole with the shorter side PHOTO_SCALE x the input size, so that crops of
# down to half the shorter side are cut from real pixels, not upsampled.
PHOTO_SCALE = 2


def default_cache_dir(kind: str = "features") -> Path:
    """`$XDG_CACHE_HOME/knyang-cam/<kind>` (~/.cache/... when unset); not created here."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "knyang-cam" / kind


KEY_PREFIX = "sha256:"  # every cache key starts with a file_key
# Digests already computed in this process, by (path, size, mtime): a run reads each file's bytes once.
_digests: dict[tuple[str, int, int], str] = {}


def file_key(path: Path) -> str:
    """A file's cache key, from its bytes: an edited file gets a new one, a copy the same; OSError when missing.

    Keyed by path and modification time instead, the cache missed every photo of a dataset
    copied to another disk, restored from a backup or checked out again, and kept the stale
    entries of each such copy: the developers' cache of the five cats had grown to 7.7 GB,
    with every training loading all of it.
    """
    st = path.stat()
    seen = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if seen not in _digests:
        _digests[seen] = hashlib.sha256(path.read_bytes()).hexdigest()[:32]
    return f"{KEY_PREFIX}{_digests[seen]}|{st.st_size}"


def identity(extractor) -> str:
    """The cache's key for a feature extractor: its layers' kinds and names and all its weights.

    Full training and the live retrain (which has only the model) get the same key for the
    same network, so features computed by one are found by the other.
    """
    digest = hashlib.sha256(repr([(type(layer).__name__, layer.name) for layer in extractor.layers]).encode())
    for w in extractor.get_weights():
        digest.update(np.ascontiguousarray(w).tobytes())
    return f"extractor-{digest.hexdigest()[:20]}-s{extractor.input_shape[1]}-d{extractor.output_shape[-1]}"


def view_key(key: str, view: View, photo_side: int) -> str:
    """The cache key of a crop of a photo: its file key, the crop, the resolution it was cut from."""
    return f"{key}#{view.name}s{photo_side}"


def _drawn_views(n: int, seed: int) -> tuple[View, ...]:
    """`n` crops drawn once like phase (b)'s random ones, every other one mirrored."""
    return tuple(View(round(v.scale, 2), round(v.dx, 2), round(v.dy, 2), flip=bool(i % 2))
                 for i, v in enumerate(random_views(n, np.random.default_rng(seed))))


# Crops of every training photo besides its centre square (recipe.TRAIN_VIEWS): a closer centre,
# four squares towards the corners, and 18 drawn ones, as a camera's centre crop frames a scene.
# Each costs one backbone pass per photo, once (cached).
CORNERS = (View(0.8, -0.6, -0.6), View(0.8, 0.6, -0.6), View(0.8, -0.6, 0.6), View(0.8, 0.6, 0.6))
CROPS = (View(0.7),) + CORNERS + _drawn_views(18, seed=0)


def _check_entries(keys: np.ndarray, vectors: np.ndarray, identity: str) -> None:
    """ValueError unless there is one vector per key name, as wide as `identity` says (`...-d2560`): a cache
    file damaged or written by something else ended the training in a traceback where a good one was read."""
    width = re.search(r"-d(\d+)$", identity)
    if keys.ndim != 1 or keys.dtype.kind != "U" or vectors.ndim != 2 or vectors.dtype.kind != "f" or \
            len(keys) != len(vectors) or (width is not None and vectors.shape[1] != int(width[1])):
        raise ValueError(f"{keys.shape} keys of {keys.dtype} do not match {vectors.shape} vectors of {vectors.dtype}")


class FeatureCache:
    """Per-file feature vectors for one backbone identity, loaded and saved as a whole."""

    def __init__(self, directory: str | Path, identity: str):
        self.path = Path(directory) / f"{hashlib.sha256(identity.encode()).hexdigest()[:20]}.npz"
        self._vectors: dict[str, np.ndarray] = {}
        self._dirty = False
        try:
            with np.load(self.path, allow_pickle=False) as f:
                keys, vectors = f["keys"], f["vectors"]
                _check_entries(keys, vectors, identity)
                keys = keys.tolist()
                # Entries keyed the older way (path, size, mtime) can never be asked for again:
                # left out here, they leave the file at the next save.
                live = [i for i, k in enumerate(keys) if k.startswith(KEY_PREFIX)]
                self._vectors = {keys[i]: vectors[i] for i in live}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError) as e:
            # A damaged cache only costs a recomputation.
            print(f"warning: ignoring unreadable feature cache {self.path}: {e}", file=sys.stderr)

    def __len__(self) -> int:
        return len(self._vectors)

    def get(self, key: str) -> np.ndarray | None:
        """The vector stored under `key`, or None when there is none."""
        return self._vectors.get(key)

    def put(self, key: str, vector: np.ndarray) -> None:
        """Store `vector` (as float32) under `key`, replacing any; in memory until `save`."""
        self._vectors[key] = np.asarray(vector, np.float32)
        self._dirty = True

    def save(self) -> None:
        """Write atomically; a read-only or full disk costs only the cache, not the training."""
        if not self._dirty:
            return
        keys = sorted(self._vectors)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.path) as tmp:
                np.savez(tmp, keys=np.array(keys), vectors=np.stack([self._vectors[k] for k in keys]))
            self._dirty = False
        except OSError as e:
            print(f"warning: feature cache not saved to {self.path}: {e}", file=sys.stderr)


@dataclass(frozen=True)
class Features:
    """Pooled features of the files that decoded, with labels and paths, the skipped files, how many were computed."""

    vectors: np.ndarray  # [N, D] float32 pooled backbone features
    labels: np.ndarray  # [N] int32
    paths: tuple[Path, ...]
    skipped: tuple[tuple[Path, str], ...]
    computed: int  # how many ran through the backbone (the rest came from the cache)


def features_for(paths: Sequence[Path], labels: Sequence[int], extractor, backbone: Backbone,
                 cache: FeatureCache | None = None, images: Images | None = None,
                 batch_size: int = 32, progress: Callable[[int, int], None] | None = None) -> Features:
    """Features of `paths`: from `cache` where present, else by running `extractor`.

    `images`, when given, holds already decoded pixels for (some of) the paths, so a
    caller that decoded everything anyway does not decode twice. Files that do not
    decode are skipped and listed. New vectors are added to `cache` and saved.
    """
    decoded = {p: i for i, p in enumerate(images.paths)} if images is not None else {}
    keys = [file_key(Path(p)) for p in paths]
    kept, vectors, todo, todo_pixels, skipped = [], {}, [], [], []
    for i, (path, key) in enumerate(zip(paths, keys)):
        hit = cache.get(key) if cache is not None else None
        if hit is not None:
            vectors[i] = hit
            kept.append(i)
            continue
        try:
            pix = images.pixels[decoded[path]] if path in decoded else load_image(path, backbone.image_size)
        except DECODE_ERRORS as e:
            skipped.append((Path(path), why(e, path)))
            continue
        todo.append(i)
        todo_pixels.append(pix)
        kept.append(i)
    if todo:
        fresh = infer(extractor, np.stack(todo_pixels), batch_size, progress)
        for i, vec in zip(todo, fresh):
            vectors[i] = vec
            if cache is not None:
                cache.put(keys[i], vec)
        if cache is not None:
            cache.save()
    kept.sort()
    dim = extractor.output_shape[-1]
    stacked = np.stack([vectors[i] for i in kept]).astype(np.float32) if kept else np.zeros((0, dim), np.float32)
    return Features(stacked, np.asarray([labels[i] for i in kept], np.int32),
                    tuple(Path(paths[i]) for i in kept), tuple(skipped), len(todo))


Embed = Callable[[np.ndarray, Callable[[int, int], None] | None], np.ndarray]


def on_litert(extractor, batch_size: int = 32) -> Embed:
    """`extractor` as an Embed on LiteRT, converted when first called: a warm cache never pays the conversion.

    On a 2-core CPU LiteRT runs MobileNetV2 at about 210 crops a second against TensorFlow's 44-56 (the
    same features to 1e-4 of their scale; bench/train_speed.py), and a cold feature cache of the five cats
    is 21,000 crops: with TensorFlow, `python -m train` took 7 min 20 s on such a machine, over the 300 s
    it is held to (3 min 49 s so). The conversion costs about 20 s there.
    """
    run = None

    def embed(pixels: np.ndarray, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        nonlocal run
        if run is None:
            from .export import tflite_bytes
            from .tflite_edit import LiteRTFeatures

            run = LiteRTFeatures(tflite_bytes(extractor), os.cpu_count() or 2, batch_size)
        return run(pixels, progress)
    return embed


def view_features_for(paths: Sequence[Path], labels: Sequence[int], extractor, backbone: Backbone,
                      views: Sequence[View], photo_side: int, cache: FeatureCache | None = None,
                      images: Images | None = None, batch_size: int = 32,
                      progress: Callable[[int, int], None] | None = None, embed: Embed | None = None) -> Features:
    """Features of fixed crops (`views`) of whole photos, view by view within each photo.

    Like `features_for`, but one row per (photo, view); cached under `view_key`, so
    they live beside the centre-square entries of the same files. `images.photos`,
    when given, are the photos decoded whole at `photo_side`; others are decoded here.
    `embed(pixels, progress)`, when given, computes the features instead of running
    `extractor` in TensorFlow (the live retrain's LiteRT copy of the same network).
    """
    size = backbone.image_size
    have = ({p: i for i, p in enumerate(images.paths)}
            if images is not None and images.photos is not None else {})
    rows, vectors, todo_keys, todo_pixels, skipped = [], {}, [], [], []
    for path, label in zip(paths, labels):
        base = file_key(Path(path))
        keys = [view_key(base, v, photo_side) for v in views]
        hits = [cache.get(k) if cache is not None else None for k in keys]
        if any(h is None for h in hits):
            try:
                photo = images.photos[have[path]] if path in have else load_photo(path, photo_side)
            except DECODE_ERRORS as e:
                skipped.append((Path(path), why(e, path)))
                continue
            for key, view, hit in zip(keys, views, hits):
                if hit is None:
                    todo_keys.append(key)
                    todo_pixels.append(crop_view(photo, view, size))
        for key, hit in zip(keys, hits):
            if hit is not None:
                vectors[key] = hit
            rows.append((key, label, Path(path)))
    if todo_keys:
        pixels = np.stack(todo_pixels)
        fresh = embed(pixels, progress) if embed else infer(extractor, pixels, batch_size, progress)
        for key, vec in zip(todo_keys, fresh):
            vectors[key] = vec
            if cache is not None:
                cache.put(key, vec)
        if cache is not None:
            cache.save()
    dim = extractor.output_shape[-1]
    stacked = (np.stack([vectors[k] for k, _, _ in rows]).astype(np.float32) if rows
               else np.zeros((0, dim), np.float32))
    return Features(stacked, np.asarray([lab for _, lab, _ in rows], np.int32),
                    tuple(p for _, _, p in rows), tuple(skipped), len(todo_keys))
