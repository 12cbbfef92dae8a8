"""What learning the Validation photos is worth on video: bench/find_cats.py's scenes of half of them,
through a model of Train alone and through one that learnt the other half too.

    python bench/learn_validation.py [--seeds 13,14,15,16,17] [--work DIR]

`train.learn_validation` (default true) makes a model learn its Validation folder once scored. The
five cats' Validation photos are partly other days (8 of Chungdam's 10; its Train photos are one
afternoon), like the new photos a user's camera sees. Each cat's Validation photos are split in two
halves by burst (the file-name prefix of `1587034204110-28.jpg`, alternately), so no burst is on both
sides. For each half: the scenes of `find_cats.py` (one cat off centre, small, two and three cats,
empty rooms, a dog; detect mode, default settings) made of that half's photos alone, played through
(a) the bundled recipe on Train alone (bench/scene_model.py's twin) and (b) the same recipe on Train
and the other half. Printed: per half and seed the figures of both, then their paired differences
(mean +- SD over halves x seeds). About a minute a seed and half, plus two trainings (seconds with a
warm feature cache).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import find_cats  # noqa: E402
from scene_model import for_scenes  # noqa: E402
from shared_paths import KNYANG, WEIGHTS  # noqa: E402

from knyang_cam import config, model_dir  # noqa: E402
from train.folds import burst_of  # noqa: E402

KINDS = ("one cat off centre (40-55%)", "one cat, small (25-35%)", "two cats", "three cats")


def halves(work: Path) -> list[tuple[Path, Path]]:
    """Per half k: (folder of its photos by cat, dataset of Train plus the other half as Train); links."""
    out = [(work / f"half{k}", work / f"learnt-other-than-{k}") for k in (0, 1)]
    if out[0][0].exists():  # made by an earlier run with this --work
        return out
    for cat in sorted(p for p in (KNYANG / "Validation").iterdir() if p.is_dir()):
        photos = sorted(p for p in cat.iterdir() if p.is_file())
        side = {b: i % 2 for i, b in enumerate(sorted({burst_of(p) for p in photos}))}
        for k, (half, dataset) in enumerate(out):
            for p in photos:
                held = side[burst_of(p)] == k
                folder = half / cat.name if held else dataset / "Train" / cat.name
                folder.mkdir(parents=True, exist_ok=True)
                (folder / p.name).symlink_to(p)
                if held:  # scored by the training, never learnt
                    (dataset / "Validation" / cat.name).mkdir(parents=True, exist_ok=True)
                    (dataset / "Validation" / cat.name / p.name).symlink_to(p)
            for p in sorted((KNYANG / "Train" / cat.name).iterdir()):
                (dataset / "Train" / cat.name).mkdir(parents=True, exist_ok=True)
                (dataset / "Train" / cat.name / p.name).symlink_to(p)
    return out


def figures(info, photos: Path, seed: int, work: Path) -> dict[str, float]:
    """Named right per kind of scene and wrong names per frame, find_cats.py's way."""
    rng = np.random.default_rng(seed)
    plan = find_cats.scene_plan(find_cats.validation_photos(photos), find_cats.held_out_dogs(), rng)
    truth = find_cats.render(plan, work / "scenes.mp4", 40, seed)
    cfg = config.override(config.load(), **{"app.dataset_root": str(work / "data"),
                                            "app.snapshots_dir": str(work / "snaps")})
    _, records = find_cats.app_run(cfg, work / "scenes.mp4", info, work / "log.jsonl")
    scores = find_cats.score(records, truth)
    out = {kind: scores[kind]["right"] / scores[kind]["shown"] for kind in KINDS}
    frames = sum(s["frames"] for s in scores.values())
    out["wrong names per frame"] = sum(s["wrong"] for s in scores.values()) / frames
    out["  over a cat of another name"] = sum(s["misnamed"] for s in scores.values()) / frames
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="13,14,15,16,17")
    p.add_argument("--work", type=Path, help="keep the halves and their models here (default: a temporary folder)")
    args = p.parse_args(argv)
    for need in (KNYANG / "Train", KNYANG / "Validation", WEIGHTS):
        if not need.exists():
            print(f"error: {need} not found (the shared data)", file=sys.stderr)
            return 2
    from knyang_cam.config import TrainConfig
    from train.pipeline import train_model

    seeds = [int(s) for s in args.seeds.split(",")]
    alone = for_scenes("models/knyang")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        pairs = []
        for k, (half, dataset) in enumerate(halves(work)):
            model = work / f"model-other-than-{k}"
            if not (model / "model.json").is_file():
                train_model(dataset, model, str(WEIGHTS), TrainConfig(learn_validation=False))
            learnt = model_dir.read(model)
            for seed in seeds:
                a, b = figures(alone, half, seed, work), figures(learnt, half, seed, work)
                pairs.append((a, b))
                print(f"half {k} seed {seed}: " + "; ".join(f"{name.strip()} {a[name]:.3f} -> {b[name]:.3f}"
                                                         for name in a), flush=True)
    print(f"\nTrain alone -> Train and the other half of Validation, {len(pairs)} runs (2 halves x {len(seeds)} "
          f"seeds): mean, then the paired difference (mean +- SD), and in how many runs it is better")
    for name in pairs[0][0]:
        a, b = (np.array([pair[i][name] for pair in pairs]) for i in (0, 1))
        better = int(np.sum(b < a if "wrong" in name or "another" in name else b > a))
        print(f"  {name:30s} {a.mean():.3f} -> {b.mean():.3f}   {np.mean(b - a):+.3f} +- {np.std(b - a):.3f}   "
              f"better in {better} of {len(pairs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
