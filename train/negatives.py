"""The bank of other animals every model knows out of the box: other cats and dogs.

`train/negatives.npz` holds, for the bundled backbone, the average-pooled features
(unit rows, float16, near-duplicates merged) of crops of the Oxford-IIIT Pet sample in
../shared/data/oxford_pets (120 cats of 12 breeds, 250 dogs of 25 breeds; CC BY-SA 4.0,
Parkhi, Vedaldi, Zisserman, Jawahar, "Cats and Dogs", CVPR 2012: the features are derived
from those photos and are shared under the same licence). No photo is shipped. Training
with another backbone finds no bank for it and says so; the gate then knows only the
user's own not_mine crops.

Rebuild it (python -m train.negatives --pets ../shared/data/oxford_pets --weights FILE).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

BANK_FILE = Path(__file__).with_name("negatives.npz")


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

    from . import features, recipe
    from .model import Backbone
    from .model import build as build_network

    cfg = TrainConfig()
    backbone = Backbone(weights, cfg.image_size, cfg.alpha)
    net = build_network(backbone, 2)
    identity = features.identity(net.features)
    cache = features.FeatureCache(features.default_cache_dir(), identity)
    f = features.view_features_for(files, [0] * len(files), net.features, backbone, recipe.BANK_VIEWS,
                                   2 * cfg.image_size, cache, batch_size=cfg.batch_size)
    return recipe.spread(recipe.gate_part(f.vectors), merge or cfg.reference_merge), identity, len(f.vectors)


def build(pets: Path, weights: str, out: Path = BANK_FILE, merge: float | None = None) -> int:
    """Compute and write the bank for `weights` from the cats/ and dogs/ photos under `pets`."""
    from knyang_cam.atomic import atomic_path

    from . import recipe

    files = sorted(p for kind in ("cats", "dogs") for p in (pets / kind).glob("*.jpg"))
    if not files:
        raise SystemExit(f"no photos in {pets}/cats or {pets}/dogs")
    bank, identity, crops = rows(files, weights, merge)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, identity=np.array(identity), vectors=bank.astype(np.float16),
                                source=np.array(f"{len(files)} Oxford-IIIT Pet photos (cats and dogs), "
                                                f"{len(recipe.BANK_VIEWS)} crops each, CC BY-SA 4.0"))
    print(f"wrote {out}: {len(bank)} rows from {len(files)} photos ({crops} crops)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The `python -m train.negatives` entry point: build the bank into --out; 0 (SystemExit without photos)."""
    p = argparse.ArgumentParser(prog="python -m train.negatives", description=__doc__.splitlines()[0])
    p.add_argument("--pets", type=Path, required=True, help="folder with cats/ and dogs/ photos")
    p.add_argument("--weights", required=True, help="the backbone's no-top .weights.h5")
    p.add_argument("--out", type=Path, default=BANK_FILE)
    args = p.parse_args(argv)
    return build(args.pets, args.weights, args.out)


if __name__ == "__main__":
    sys.exit(main())
