"""Teach it live, timed: label 20 crops with number keys, press `t`, wait for the swapped model.

    python bench/retrain_latency.py [--model models/knyang] [--labels 20]

The app runs headless, in this process, over a looping pan/zoom clip made from
Train photos of the shared dataset (so the labelled crops are new pictures of
known cats, none from Validation), paced at the clip's 30 FPS as a webcam would
deliver it. Its dataset root is a fresh copy of the shared dataset; the feature
cache starts empty. Two rounds, in one run:

1. first retrain, cold feature cache: every photo runs through the backbone once;
2. second retrain, warm cache: only the 20 new crops of this round run through it.

Unpaced (headless as fast as it goes) the loop itself takes both cores, and the
lower-priority retrain gets only what is left: that is batch processing, not a
live view, and is not measured here.

For each round it prints the normal frame rate, the frame rate while retraining,
their ratio (target >= 0.8), and the seconds from `t` to the model swapped in
(targets: cold <= 60, warm <= 30), with the seconds of each stage the retrain reported
(start: the child's Python and TensorFlow import; tflite: the patched or converted model.tflite).
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from make_demo_clip import make_clip, photos  # noqa: E402
from shared_paths import KNYANG  # noqa: E402
from soak import SampledLoop  # noqa: E402

from knyang_cam import app, config, model_dir  # noqa: E402
from knyang_cam.__main__ import resolve  # noqa: E402

SWAP_MARK = "after frame"


class Round:
    """A key provider that measures: normal rate, label keys, `t`, rate until the swap is printed."""

    def __init__(self, out: io.StringIO, truth: list[str], classes, labels: int, warm: int = 60,
                 normal: int = 300):
        self.out, self.truth, self.classes = out, truth, classes
        self.label_frames = set(range(warm + normal, warm + normal + labels * 15, 15))
        self.t_frame = warm + normal + labels * 15 + 5
        self.warm, self.normal = warm, normal
        self.times: list[float] = []
        self.t_at = self.swap_at = None
        self.swap_frame = None

    def __call__(self, delay_ms: int) -> int:
        if delay_ms > 1:
            time.sleep(delay_ms / 1000)
        now = time.perf_counter()
        self.times.append(now)
        n = len(self.times) - 1  # the frame just shown
        if n in self.label_frames:
            return ord(str(self.classes.index(self.truth[n % len(self.truth)]) + 1))
        if n == self.t_frame:
            self.t_at = now
            return ord("t")
        if self.t_at is not None and self.swap_at is None and SWAP_MARK in self.out.getvalue():
            self.swap_at, self.swap_frame = now, n
        if self.swap_frame is not None and n >= self.swap_frame + 30:
            return ord("q")
        if self.t_at is not None and now - self.t_at > 300:
            return ord("q")  # give up: reported as no swap
        return -1

    def rate(self, first: int, last: int) -> float:
        return (last - first) / (self.times[last] - self.times[first])

    def report(self, name: str, target: float) -> None:
        normal = self.rate(self.warm, self.warm + self.normal)
        print(f"\n{name}")
        print(f"  normal frame rate            {normal:7.1f} FPS")
        if self.swap_at is None:
            print("  no model was swapped in within 300 s")
            print("  " + self.out.getvalue().strip().replace("\n", "\n  "))
            return
        during = self.rate(self.t_frame, self.swap_frame)
        print(f"  frame rate while retraining  {during:7.1f} FPS  ({during / normal:.2f} of normal, target >= 0.8)")
        print(f"  `t` to swapped model         {self.swap_at - self.t_at:7.1f} s    (target <= {target:.0f})")
        swap_line = next(line for line in self.out.getvalue().splitlines() if SWAP_MARK in line)
        print(f"  {swap_line}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="models/knyang")
    p.add_argument("--labels", type=int, default=20, help="crops labelled before `t`")
    args = p.parse_args(argv)
    if not KNYANG.is_dir():
        print(f"needs the shared dataset at {KNYANG}", file=sys.stderr)
        return 2
    info = model_dir.read(resolve(args.model))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["XDG_CACHE_HOME"] = str(tmp / "cache")
        data = tmp / "data"
        shutil.copytree(KNYANG, data)
        # Four Train photos per cat, one second each: a label key lands on every photo.
        pairs = [pair for nth in (3, 13, 23, 33) for pair in photos(KNYANG / "Train", nth)]
        clip = tmp / "train_clip.mp4"
        truth = make_clip(pairs, clip, seconds=1.0, fps=30.0, seed=1)
        base = config.load()
        cfg = dataclasses.replace(
            base,
            app=dataclasses.replace(base.app, dataset_root=str(data), snapshots_dir=str(tmp / "snaps"),
                                    realtime=True),
            retrain=dataclasses.replace(base.retrain, models_dir=str(tmp / "models")))
        print(f"dataset: a copy of {KNYANG} ({sum(1 for _ in data.rglob('*.jpg'))} photos); "
              f"clip: {len(truth)} frames from {len(pairs)} Train photos, looping")
        for name, target in (("round 1: first retrain, cold feature cache", 60),
                             ("round 2: second retrain, warm feature cache", 30)):
            out = io.StringIO()
            keys = Round(out, truth, list(info.classes), args.labels)
            app.run(cfg, SampledLoop(clip, 10**9, 10**9), info, keys=keys, out=out)
            keys.report(name, target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
