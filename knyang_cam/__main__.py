"""`python -m knyang_cam` / `knyang-cam`: argument parsing; the loop lives in app.py."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from .errors import OneLineParser, UserError, exit_status

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="knyang-cam", description="Name your cats live from a webcam or a video.")
    p.add_argument("--source", default="0",
                   help="webcam index, video file, folder of images, glob, or 'synthetic' (default: 0)")
    p.add_argument("--model", help="model directory (default: app.model in the config, models/knyang)")
    p.add_argument("--config", help="YAML config file (default: the project's config.yaml)")
    p.add_argument("--crop", choices=("center", "detect"), help="centre square or cat-face detection")
    p.add_argument("--headless", action="store_true", help="no window; files run as fast as possible")
    p.add_argument("--output", metavar="FILE.mp4", help="write the annotated video")
    p.add_argument("--log", metavar="FILE.jsonl", help="write one JSON line of predictions per frame")
    p.add_argument("--report", metavar="DIR", help="write a timeline, appearances CSV and contact sheet")
    p.add_argument("--max-frames", type=_positive_int, metavar="N", help="stop after N frames")
    p.add_argument("--realtime", action=argparse.BooleanOptionalAction, default=None,
                   help="play files at their own frame rate (default: on screen yes, headless no)")
    return p


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of frames, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def resolve(path: str) -> Path:
    """A relative path from the current folder if it exists there, else from the project root."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists() or not (PROJECT_ROOT / p).exists():
        return p
    return PROJECT_ROOT / p


def run(args: argparse.Namespace) -> int:
    from . import app, config, model_dir, paths, sources

    if not args.source.strip():
        raise UserError("--source is empty: give a camera index, a video file, a folder or a glob")
    cfg = config.override(config.load(args.config), **{"regions.crop": args.crop, "app.realtime": args.realtime})
    model = resolve(args.model or cfg.app.model)
    inputs = paths.source_inputs(args.source) + [paths.Input("--model", model, folder=True)]
    inputs += [paths.Input("--config", Path(args.config))] if args.config else []
    paths.check_app(inputs, args.output, args.log, args.report)  # before anything is read or written
    info = model_dir.read(model)
    with app.libjpeg_warnings_dropped():  # a folder source decodes its first photo here
        source = sources.open_source(args.source, cfg.camera)
    return app.run(cfg, source, info, window=not args.headless, output=args.output, log=args.log,
                   report=args.report, max_frames=args.max_frames)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return exit_status(lambda: run(args))
    except KeyboardInterrupt:  # before the loop's own handler is installed, e.g. while loading
        return 130


if __name__ == "__main__":
    sys.exit(main())
