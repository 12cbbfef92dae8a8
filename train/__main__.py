"""python -m train --data DIR [--out DIR] [--weights imagenet|bundled|none|FILE] [--config FILE]

Argument parsing and error reporting only; the work is in train.pipeline.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from knyang_cam.errors import OneLineParser, UserError, exit_status


def build_parser() -> argparse.ArgumentParser:
    """The `python -m train` / `knyang-train` parser; a bad argument is one `error:` line on stderr, exit 2."""
    p = OneLineParser(
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
                   help="backbone weights: 'imagenet' (Keras download, the default), 'bundled' (the base of "
                        "the model the app ships with: no download), 'none' (random, for tests) or a "
                        "MobileNetV2 no-top .weights.h5 FILE")
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
    """`models/<name of the resolved data folder>`: the model directory when --out is not given."""
    return Path("models") / Path(data).resolve().name


def run(args: argparse.Namespace) -> int:
    """Check the inputs, train `args.data` into the model directory, print one summary line; 0, or UserError."""
    from knyang_cam import config, extras, model_out, paths

    from . import data
    from .model import BUNDLED, NAMED_WEIGHTS, bundled_model_file, check_weights_file

    extras.require_tensorflow("training")  # first: without it nothing else can be done
    if not args.data.strip():
        raise UserError("--data is empty: give the dataset folder")
    if args.out is not None and not args.out.strip():  # an unset "$OUT" must not mean the default
        raise UserError("--out is empty: give the model directory, or leave --out out for models/<name of --data>")
    cfg = config.load(args.config)
    cache = cfg.train.feature_cache
    out = Path(args.out) if args.out is not None else default_out(args.data)
    inputs = [paths.Input("--config", Path(args.config))] if args.config else []
    check_weights_file(args.weights)
    if args.weights == BUNDLED:  # read at the start, but --out must not replace what the weights came from
        inputs.append(paths.Input("--weights bundled", bundled_model_file().parent, folder=True))
    elif args.weights not in NAMED_WEIGHTS:
        inputs.append(paths.Input("--weights", Path(args.weights)))
    out = model_out.check_model_out(out, data=args.data, inputs=inputs)
    cache_dir = Path(os.path.expanduser(cache)) if cache else None
    # Inside --out the cache would be a file of the user's that the export refuses to replace (after all the work).
    paths.check_cache("train.feature_cache", cache_dir, (("--data", args.data), ("--out", out)))
    # The dataset is checked before TensorFlow is imported: its errors come in a second, not after
    # the backbone's start-up, and without TensorFlow's lines around them.
    _check_dataset(data.find_images(args.data, cfg.train.validation_fraction, cfg.train.seed))
    extras.quiet_tensorflow(args.verbose)
    with model_out.claim_model_dir(out):
        from .pipeline import train_model

        result = train_model(args.data, out, args.weights, cfg.train, cache_dir=cache_dir)
    test = f", test accuracy {result.test_accuracy:.3f}" if result.test_accuracy is not None else ""
    # Named right first: it is what the app shows; the top class alone ignores "unknown" and reads higher.
    print(f"wrote {result.out}: validation photos named right {result.val_named_right:.3f} (unknown counts as "
          f"wrong, one view each), top class alone {result.val_accuracy:.3f}{test}, "
          f"unknown threshold {result.unknown_threshold:.2f}, {len(result.skipped)} files skipped")
    return 0


def _check_dataset(dataset) -> None:
    """Every class has a training photo whose header reads, so a class of broken files fails at once; there
    is a validation photo at all (one photo per cat leaves none to hold out). In this order: a class of one
    file that is no photo (notes.txt) was said to have one photo."""
    from .data import DECODE_ERRORS, DatasetError, no_decodable, open_image, why

    for label, name in enumerate(dataset.classes):
        bad = []
        for path in (p for p, y in zip(dataset.train.paths, dataset.train.labels) if y == label):
            try:
                with open_image(path):
                    break
            except DECODE_ERRORS as e:
                bad.append((path, why(e, path)))
        else:
            raise no_decodable([name], "training", dataset.root, bad)

    if not len(dataset.validation):
        raise DatasetError(f"no validation photos in {dataset.root}: every cat has one photo, and that one is "
                           f"learnt; add photos (at least two of a cat, one is held out to check the model) or a "
                           f"Validation folder")


def _interrupt(signum, _frame):
    raise KeyboardInterrupt(signum)


def until_interrupted(work: Callable[[], int], say: Callable[[str], None]) -> int:
    """`work()`'s exit status; on Ctrl-C or SIGTERM, `say("interrupted by SIGTERM")` and 128 + the signal.

    SIGTERM (the app stopping its retrain, a system shutdown) unwinds like Ctrl-C, so staging folders are
    removed on the way out.
    """
    old = signal.signal(signal.SIGTERM, _interrupt) if threading.current_thread() is threading.main_thread() else None
    try:
        return work()
    except KeyboardInterrupt as e:
        signum = e.args[0] if e.args else signal.SIGINT
        say(f"interrupted by {signal.Signals(signum).name}")
        return 128 + signum
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


def main(argv: Sequence[str] | None = None) -> int:
    """The `python -m train` entry point: parse `argv`, train; 0, 2 bad input, 1 write failed, 128+signal."""
    from knyang_cam.errors import survive_broken_pipe

    args = build_parser().parse_args(argv)
    return until_interrupted(
        lambda: survive_broken_pipe(lambda: exit_status(lambda: run(args))),
        lambda why: print(f"error: {why}; the previous model directory (if any) is unchanged", file=sys.stderr))


if __name__ == "__main__":
    sys.exit(main())
