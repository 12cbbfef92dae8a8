"""python -m train --data DIR [--out DIR] [--weights imagenet|none|FILE] [--config FILE]

Argument parsing and error reporting only; the work is in train.pipeline.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from knyang_cam.errors import exit_status


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog_name(),
        description="Train a cat classifier (MobileNetV2 transfer learning) on a folder of photos "
                    "and write a model directory the app can load.",
        epilog="Dataset layouts: DIR/Train/<cat>/*.jpg with DIR/Validation/<cat>/*.jpg (and optional "
               "DIR/Test), or DIR/<cat>/*.jpg split by train.validation_fraction and train.seed. "
               "Features of the frozen backbone are cached under $XDG_CACHE_HOME/knyang-cam/features "
               "(~/.cache/...) unless train.feature_cache says otherwise.")
    p.add_argument("--data", required=True, help="dataset folder, one sub-folder of photos per cat")
    p.add_argument("--out", default=None,
                   help="model directory to write (default: models/<name of the --data folder>); "
                        "an existing one is replaced only once the new model is complete")
    p.add_argument("--weights", default="imagenet",
                   help="backbone weights: 'imagenet' (Keras download, the default), 'none' "
                        "(random, for tests) or a MobileNetV2 no-top .weights.h5 FILE")
    p.add_argument("--config", default=None, help="config.yaml to use (default: the project's)")
    p.add_argument("--verbose", action="store_true", help="keep TensorFlow's own start-up log")
    return p


def prog_name(module: str = "") -> str:
    """`knyang-train` when run as the installed command, else `python -m train[.module]`."""
    command = Path(sys.argv[0]).stem
    if command.startswith("knyang-train") and not module:
        return "knyang-train"
    return f"python -m {__package__ or 'train'}{'.' + module if module else ''}"


def default_out(data: str | Path) -> Path:
    return Path("models") / Path(data).resolve().name


def run(args: argparse.Namespace) -> int:
    from knyang_cam import config, extras

    extras.require_tensorflow("training")
    extras.quiet_tensorflow(args.verbose)
    from .pipeline import train_model

    cfg = config.load(args.config)
    cache = cfg.train.feature_cache
    out = Path(args.out) if args.out else default_out(args.data)
    result = train_model(args.data, out, args.weights, cfg.train,
                         cache_dir=Path(os.path.expanduser(cache)) if cache else None)
    test = f", test accuracy {result.test_accuracy:.3f}" if result.test_accuracy is not None else ""
    print(f"wrote {result.out}: validation accuracy {result.val_accuracy:.3f}{test}, "
          f"unknown threshold {result.unknown_threshold:.2f}, {len(result.skipped)} files skipped")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    from knyang_cam.errors import survive_broken_pipe

    args = build_parser().parse_args(argv)
    try:
        return survive_broken_pipe(lambda: exit_status(lambda: run(args)))
    except KeyboardInterrupt:
        print("error: interrupted; the previous model directory (if any) is unchanged", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
