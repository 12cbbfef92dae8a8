"""The bank of other animals every model knows out of the box: other cats and dogs.

`train/negatives.npz` holds, for the bundled backbone, the average-pooled features
(unit rows, float16, near-duplicates merged) of crops of the Oxford-IIIT Pet sample in
../shared/data/oxford_pets (120 cats of 12 breeds, 250 dogs of 25 breeds; CC BY-SA 4.0,
Parkhi, Vedaldi, Zisserman, Jawahar, "Cats and Dogs", CVPR 2012: the features are derived
from those photos and are shared under the same licence). The same photos, scaled down, ship
in `train/bank/` (its README credits them): training with any other backbone (Keras' ImageNet
weights, the product default; a fine-tuned base) computes its bank from them, once, into the
feature cache. Without one, "unknown" would rest on the distance to my cats alone: on grouped
folds (bench/quality.py --beta 0) 8 points fewer strangers read unknown (0.853 against 0.931).

Rebuild the .npz (python -m train.negatives --pets ../shared/data/oxford_pets --weights FILE).
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

BANK_FILE = Path(__file__).with_name("negatives.npz")
PHOTOS = Path(__file__).with_name("bank")  # cats/ and dogs/: the same animals as photos, for any backbone


def photos(folder: Path = PHOTOS) -> list[Path]:
    """The bank's photos under `folder` (cats/ and dogs/), sorted."""
    return sorted(p for kind in ("cats", "dogs") for p in (folder / kind).glob("*.jpg"))


def load(identity: str, path: Path = BANK_FILE) -> np.ndarray | None:
    """The bank's unit rows for the feature extractor `identity`, or None when there is none for it."""
    try:
        with np.load(path, allow_pickle=False) as f:
            if str(f["identity"]) != identity:
                return None
            return np.asarray(f["vectors"], np.float32)
    except (OSError, KeyError, ValueError):
        return None


def rows(files: Sequence[Path], weights: str, merge: float | None = None) -> tuple[np.ndarray, str, int]:
    """(the bank's unit rows, the feature extractor's identity, crops computed) of the photos `files`."""
    from knyang_cam.config import TrainConfig

    from . import features
    from .model import Backbone
    from .model import build as build_network

    cfg = TrainConfig()
    net = build_network(Backbone(weights, cfg.image_size, cfg.alpha), 2)
    identity = features.identity(net.features)
    cache = features.FeatureCache(features.default_cache_dir(), identity)
    f = crops(files, net.features, cache, cfg.batch_size)
    return gate_rows(f.vectors, merge or cfg.reference_merge), identity, f.computed


def crops(files: Sequence[Path], extractor, cache, batch_size: int = 32, progress=None, embed=None):
    """The pooled features (features.Features) of the bank's crops (recipe.BANK_VIEWS) of `files`: whole, they
    are the head's other animals; their average-pooled part, the gate's. `embed`: as features.view_features_for."""
    from . import features, recipe
    from .model import Backbone

    size = extractor.input_shape[1]
    return features.view_features_for(files, [0] * len(files), extractor, Backbone("none", size), recipe.BANK_VIEWS,
                                      features.PHOTO_SCALE * size, cache, batch_size=batch_size, progress=progress,
                                      embed=embed)


def gate_rows(vectors: np.ndarray, merge: float) -> np.ndarray:
    """The gate's unit rows of the bank's pooled crop features `vectors` (crops(...).vectors)."""
    from . import recipe

    return recipe.spread(recipe.gate_part(vectors), merge)


# A bank row this similar (cosine of the average-pooled features) to the centre square of a user's photo is that
# photo: the bank's Oxford-IIIT Pet cats are photos a user may have too. The five cats' centre squares come no
# closer than 0.71 to any bank row, Oxford cats of one breed no closer than 0.81 to each other (other photos of
# one burst share 0.92 and more, train/folds.py); the same photos saved again (greyscale, CMYK, six times
# larger, PNG) 0.78-1.00, 0.90 and more for 84% of them.
OWN_PHOTO = 0.9


def without_mine(mine: np.ndarray, gate: np.ndarray, head: np.ndarray | None, head_photos: Sequence | None = None,
                 not_mine: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None, int]:
    """(`gate`, `head`, how many rows left out): the bank's gate rows (unit, average-pooled) and head rows
    (pooled, average then maximum; `head_photos`: the photo of each; None: each row its own) without the
    user's own photos.

    A head row of a photo is left out with every other row of that photo once one of them is OWN_PHOTO or
    more similar to a row of `mine` (pooled centre squares of the user's photos); a gate row (merged rows of no photo)
    when it is that similar to a crop of mine or to a head row left out, unless it is as similar to a crop
    of `not_mine` (pooled rows: the user said so; a retrained model's gate holds its earlier not_mine crops).
    A cat of the user's that is also in the bank was both "mine" and "another animal": every photo of it
    read `unknown` (a household of three Oxford cat breeds, 10 bank photos each: none of its validation
    photos named right, the top class 0.67).
    """
    from . import recipe

    mine = recipe.unit(recipe.gate_part(mine))

    def closest(rows: np.ndarray, to: np.ndarray) -> tuple[np.ndarray, float]:
        """Each row's highest similarity to a row of `to`, and the mean similarity of all pairs."""
        best, total = np.full(len(rows), -1.0, np.float32), 0.0
        for start in range(0, len(to), 2048):  # a block at a time: memory stays small
            sims = rows @ to[start:start + 2048].T
            best, total = np.maximum(best, sims.max(1, initial=-1.0)), total + float(sims.sum())
        return best, total / max(len(rows) * len(to), 1)

    head_units = recipe.unit(recipe.gate_part(head)) if head is not None and len(head) else \
        np.zeros((0, mine.shape[1]), np.float32)
    near_gate, gate_typical = closest(gate, mine)
    near_head, head_typical = closest(head_units, mine)
    # Features that cannot tell photos apart (--weights none): no photo is anyone's.
    if (gate_typical if len(gate) else head_typical) >= OWN_PHOTO:
        return gate, head, 0
    mine_head = near_head >= OWN_PHOTO
    if head_photos is not None:
        photos = np.asarray([str(p) for p in head_photos])
        mine_head = np.isin(photos, photos[mine_head])
    if mine_head.any():
        near_gate = np.maximum(near_gate, closest(gate, head_units[mine_head])[0])
    keep_gate = near_gate < OWN_PHOTO
    if not_mine is not None and len(not_mine) and not keep_gate.all():
        keep_gate |= closest(gate, recipe.unit(recipe.gate_part(not_mine)))[0] >= OWN_PHOTO
    left_out = int((~keep_gate).sum() + mine_head.sum())
    return gate[keep_gate], head if head is None else head[~mine_head], left_out


def for_extractor(extractor, identity: str, bank_crops, merge: float, log=lambda text: None) -> np.ndarray:
    """The bank's unit rows for `extractor`: the shipped ones when they are its own, else those of `bank_crops`
    (crops(photos(), ...), which the head learns too: computed once, then cached); empty when neither is there."""
    bank = load(identity)
    if bank is not None:
        return bank
    if not len(bank_crops.vectors):
        log(f"note: no bank of other animals for this backbone ({BANK_FILE.name} is for the bundled one, and "
            f"{PHOTOS} has no photos): \"unknown\" relies on the distance to your cats and your not_mine crops")
        return np.zeros((0, extractor.output_shape[-1] // 2), np.float32)
    if bank_crops.computed:
        log(f"the bank of other animals for this backbone: {bank_crops.computed} crops of {len(set(bank_crops.paths))} "
            f"photos computed ({PHOTOS.name}/; cached for the next training)")
    return gate_rows(bank_crops.vectors, merge)


def check_paths(pets: Path, weights: str, out: Path) -> list[Path]:
    """The photos under --pets (cats/, dogs/), once every path is checked, before TensorFlow loads: --weights
    exists; --out is a file of its own, neither the --weights file nor among the photos, in a folder that can
    be written."""
    from knyang_cam import paths
    from knyang_cam.errors import UserError, paths_usable

    from .model import check_weights_file

    with paths_usable():
        files = photos(pets)
        if not files:
            raise UserError(f"--pets {pets} has no photos in cats/ or dogs/ (give the Oxford-IIIT Pet sample, "
                            f"e.g. ../shared/data/oxford_pets)")
        check_weights_file(weights)
        if out.is_dir():
            raise paths.PathError(f"--out {out} is a folder: give the bank's file, e.g. {BANK_FILE.name}")
        # A name the bank's temporary file beside it cannot have fails here, not after the bank is computed.
        paths.check_file("--out", out)
        if paths.is_within(out, pets):
            raise paths.PathError(f"--out {out} is inside --pets {pets}: write the bank outside the photos")
        if Path(weights).exists() and paths.same_file(out, weights):
            raise paths.PathError(f"--out {out} is the --weights file: write the bank to a file of its own")
        paths.check_writable("--out", out)
    return files


def build(pets: Path, weights: str, out: Path = BANK_FILE, merge: float | None = None, verbose: bool = True) -> int:
    """Compute and write the bank for `weights` from the cats/ and dogs/ photos under `pets`; without `verbose`,
    TensorFlow's start-up log is hidden."""
    from knyang_cam import extras
    from knyang_cam.atomic import atomic_path

    from . import recipe

    files = check_paths(pets, weights, out)
    extras.quiet_tensorflow(verbose)  # after the checks: it imports TensorFlow (seconds before their one line)
    bank, identity, crops = rows(files, weights, merge)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, identity=np.array(identity), vectors=bank.astype(np.float16),
                                source=np.array(f"{len(files)} Oxford-IIIT Pet photos (cats and dogs), "
                                                f"{len(recipe.BANK_VIEWS)} crops each, CC BY-SA 4.0"))
    print(f"wrote {out}: {len(bank)} rows from {len(files)} photos ({crops} crops)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The `python -m train.negatives` entry point: build the bank into --out; 0, or 2 with one line."""
    from knyang_cam.errors import OneLineParser, exit_status

    from .__main__ import prog_name

    p = OneLineParser(prog=prog_name("negatives"), description=__doc__.splitlines()[0])
    p.add_argument("--pets", type=Path, required=True, help="folder with cats/ and dogs/ photos")
    p.add_argument("--weights", required=True, help="the backbone's no-top .weights.h5")
    p.add_argument("--out", type=Path, default=BANK_FILE, help="the bank file to write (default: the trainer's "
                   f"own {BANK_FILE.name}, which training reads)")
    p.add_argument("--verbose", action="store_true", help="keep TensorFlow's own start-up log")
    args = p.parse_args(argv)
    return exit_status(lambda: build(args.pets, args.weights, args.out, verbose=args.verbose))


if __name__ == "__main__":
    sys.exit(main())
