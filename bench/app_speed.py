"""The app's speed and accuracy on a 640x480 pan/zoom clip of the shared Validation photos, in one run.
A model that learnt those photos is measured by its twin without them (bench/scene_model.py).

    python bench/app_speed.py [--model models/knyang] [--seconds 3] [--naive-frames 150]

Prints, all measured in this run on this machine:
- the app headless (log written, nothing drawn) in centre and detect mode, in frames/s;
- the same centre run with a label key pressed every 10th frame (saving crops on the writer thread);
- the raw LiteRT model rate: crops/s at batch 1;
- the prototype's way: a per-frame `model.predict` loop (decode, centre crop, predict), on the
  first --naive-frames frames because it is slow;
- the ratios, and the per-frame accuracy of the final label against the photo's cat
  ("unknown" counts as wrong). Targets (issue 3): centre >= 150 FPS and >= 15x naive,
  detect >= 30 FPS, accuracy >= 0.97.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from make_demo_clip import VALIDATION, make_clip, photos, shuffled  # noqa: E402
from scene_model import for_scenes  # noqa: E402

from knyang_cam import app, config  # noqa: E402
from knyang_cam.classify import load_classifier  # noqa: E402
from knyang_cam.keys import scripted  # noqa: E402
from knyang_cam.regions import center_finder, crops  # noqa: E402
from knyang_cam.sources import VideoFile  # noqa: E402


def app_run(cfg, clip: Path, info, log: Path, max_frames=None, keys=None) -> tuple[float, list[dict]]:
    """(frames per second, log records) of one headless run, timed from the call to its return."""
    t0 = time.perf_counter()
    status = app.run(cfg, VideoFile(clip), info, log=str(log), max_frames=max_frames, keys=keys,
                     out=io.StringIO())
    wall = time.perf_counter() - t0
    assert status == 0, status
    records = [json.loads(line) for line in log.read_text().splitlines()]
    return len(records) / wall, records


def shown(record: dict) -> str:
    """The label of a frame's largest region; a frame without a region (no cat found) shows none."""
    regions = sorted(record["regions"], key=lambda r: -r["box"][2] * r["box"][3])
    return regions[0]["label"] if regions else "(no region)"


def accuracy(records: list[dict], truth: list[str]) -> float:
    right = sum(shown(r) == truth[r["frame"]] for r in records)
    return right / len(records)


def litert_rate(info, threads: int, n: int = 300) -> float:
    classifier = load_classifier(info, "litert", threads)
    with VideoFile(ROOT / "assets" / "demo.mp4") as source:
        frame = next(iter(source)).image
    x = crops(frame, center_finder(frame), info.input_size)
    for _ in range(20):
        classifier.predict(x)
    t0 = time.perf_counter()
    for _ in range(n):
        classifier.predict(x)
    return n / (time.perf_counter() - t0)


def naive_fps(info, clip: Path, frames: int) -> float:
    """The prototype's loop: every frame decoded, centre-cropped and sent to `model.predict`."""
    import keras

    model = keras.saving.load_model(info.keras_path, compile=False)
    with VideoFile(clip) as source:
        images = (frame.image for frame in source)
        first = next(images)
        model.predict(crops(first, center_finder(first), info.input_size), verbose=0)  # build, untimed
        t0, n = time.perf_counter(), 0
        for image in images:
            model.predict(crops(image, center_finder(image), info.input_size), verbose=0)
            n += 1
            if n == frames:
                break
    return n / (time.perf_counter() - t0)


def settings(items: list[str]) -> dict:
    """`--set KEY=VALUE` items as config overrides (values read as YAML: 1.3, true, null)."""
    import yaml

    return {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in items)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="models/knyang")
    p.add_argument("--seconds", type=float, default=3.0, help="seconds of clip per photo (30 FPS)")
    p.add_argument("--detect-frames", type=int, default=1500, help="frames for the detect-mode run")
    p.add_argument("--naive-frames", type=int, default=150)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a config value for every run, e.g. regions.expand_cat=1.0 (repeatable)")
    args = p.parse_args(argv)

    info = for_scenes(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = tmp / "clip.mp4"
        # Shuffled, so the cat changes at most cuts: each change costs the smoother a few frames.
        truth = make_clip(shuffled(photos(VALIDATION, None), 0), clip, args.seconds, fps=30.0)
        changes = sum(a != b for a, b in zip(truth, truth[1:]))
        base = config.override(config.load(), **{"app.dataset_root": str(tmp / "data"),
                                                 "app.snapshots_dir": str(tmp / "snaps")})
        base = config.with_values(base, settings(args.set))
        print(f"model {info.path} ({len(info.classes)} classes, {info.input_size[0]}px); "
              f"clip 640x480, {len(truth)} frames from {len(set(truth))} cats, {changes} changes of cat")

        center = config.override(base, **{"regions.crop": "center"})
        fps_center, rec_center = app_run(center, clip, info, tmp / "center.jsonl")
        n_save = min(len(truth), args.detect_frames)
        keys = scripted(["1" if i % 10 == 0 else -1 for i in range(n_save)])
        fps_saving, _ = app_run(center, clip, info, tmp / "saving.jsonl", n_save, keys)
        saved = len(list((tmp / "data").rglob("*.jpg")))
        detect = config.override(base, **{"regions.crop": "detect"})
        fps_detect, rec_detect = app_run(detect, clip, info, tmp / "detect.jsonl", args.detect_frames)
        found = sum(any(r["source"] == "detect" for r in rec["regions"]) for rec in rec_detect)
        raw = litert_rate(info, base.classifier.threads)
        naive = naive_fps(info, clip, args.naive_frames)

    acc_center, acc_detect = accuracy(rec_center, truth), accuracy(rec_detect, truth)
    print(f"app headless, centre crop   {fps_center:8.1f} FPS   (target >= 150)")
    print(f"  with a label key every 10th frame {fps_saving:6.1f} FPS   ({saved} crops saved "
          f"in {n_save} frames)")
    print(f"app headless, detect        {fps_detect:8.1f} FPS   (target >= 30; first {len(rec_detect)} "
          f"frames, a region found in {found})")
    print(f"raw LiteRT model, batch 1   {raw:8.1f} crops/s")
    print(f"naive model.predict loop    {naive:8.1f} FPS   (first {args.naive_frames} frames)")
    print(f"ratio centre / naive        {fps_center / naive:8.1f}x  (target >= 15)")
    print(f"ratio detect / naive        {fps_detect / naive:8.1f}x")
    print(f"ratio centre / raw model    {fps_center / raw:8.2f}")
    print(f"accuracy, centre (per frame, unknown = wrong) {acc_center:.4f}   (target >= 0.97)")
    same = accuracy(rec_center[:len(rec_detect)], truth)
    print(f"accuracy, detect (first {len(rec_detect)} frames)            {acc_detect:.4f}   "
          f"(centre on the same frames {same:.4f})")
    # The finder may see one big cat as two: a second region must not name another cat.
    other = sum(g["label"] not in (truth[r["frame"]], "unknown") for r in rec_detect for g in r["regions"])
    print(f"detect: regions naming a cat that is not there, per frame {other / len(rec_detect):.4f} "
          f"(frames with two or more regions: {sum(len(r['regions']) > 1 for r in rec_detect)})")
    for mode, records in (("centre", rec_center), ("detect", rec_detect)):
        wrong = Counter((truth[r["frame"]], shown(r)) for r in records if shown(r) != truth[r["frame"]])
        if wrong:
            print(f"{mode} errors (true -> shown: frames):",
                  ", ".join(f"{t} -> {s}: {n}" for (t, s), n in wrong.most_common(8)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
