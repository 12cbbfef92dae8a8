"""Soak: the headless app over a long run, with its memory and frame rate sampled along the way.

    python bench/soak.py [--frames 20000] [--every 1000] [--model models/knyang] [--crop center]

The input is assets/demo.mp4 played over and over (real decoding every frame), the
prediction log is written, and every `--every` frames the resident memory (psutil)
and the frame rate since the last sample are recorded. Prints the samples, the
memory after warm-up (the first sample) and at the end, the growth, and how
steady the frame rate was. Target (issue 4): growth under 50 MB, frame rate steady.
"""
from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from knyang_cam import app, config, model_dir  # noqa: E402
from knyang_cam.__main__ import resolve  # noqa: E402
from knyang_cam.sources import Frame, Source, VideoFile  # noqa: E402


class SampledLoop(Source):
    """A clip played `frames` frames long, looping, recording (frames, seconds, RSS bytes) as it goes."""

    def __init__(self, clip: Path, frames: int, every: int):
        with VideoFile(clip) as probe:
            self.fps, self.size = probe.fps, probe.size
        self.clip, self.frames, self.every = clip, frames, every
        self.samples: list[tuple[int, float, int]] = []
        self._process = psutil.Process()

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while True:
            with VideoFile(self.clip) as video:
                for frame in video:
                    if index % self.every == 0:
                        self.samples.append((index, time.perf_counter(), self._process.memory_info().rss))
                    if index == self.frames:
                        return
                    yield Frame(index, index / self.fps, frame.image)
                    index += 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=20_000)
    p.add_argument("--every", type=int, default=1000, help="sample every N frames")
    p.add_argument("--model", default="models/knyang")
    p.add_argument("--crop", choices=("center", "detect"), default="center")
    p.add_argument("--clip", type=Path, default=ROOT / "assets" / "demo.mp4")
    args = p.parse_args(argv)

    info = model_dir.read(resolve(args.model))
    source = SampledLoop(args.clip, args.frames, args.every)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config.override(config.load(), **{"regions.crop": args.crop,
                                                "app.dataset_root": str(Path(tmp) / "data")})
        summary = io.StringIO()
        status = app.run(cfg, source, info, log=str(Path(tmp) / "log.jsonl"), out=summary)
    print(summary.getvalue().rstrip())
    samples = source.samples
    print(f"\n{'frames':>8} {'seconds':>8} {'FPS':>7} {'RSS MB':>8}")
    rates = []
    for (n0, t0, _), (n1, t1, rss) in zip(samples, samples[1:]):
        rates.append((n1 - n0) / (t1 - t0))
        print(f"{n1:8d} {t1 - samples[0][1]:8.1f} {rates[-1]:7.1f} {rss / 2**20:8.1f}")
    # The first interval includes the classifier's first calls: memory counts from its end.
    start, end = samples[1][2], samples[-1][2]
    steady = rates[1:] or rates
    mean = sum(steady) / len(steady)
    print(f"\nexit status {status}; {samples[-1][0]} frames")
    print(f"memory after warm-up {start / 2**20:.1f} MB, at the end {end / 2**20:.1f} MB, "
          f"growth {(end - start) / 2**20:+.1f} MB (target < 50)")
    print(f"frame rate after warm-up: mean {mean:.1f}, min {min(steady):.1f}, max {max(steady):.1f} FPS "
          f"(min/mean {min(steady) / mean:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
