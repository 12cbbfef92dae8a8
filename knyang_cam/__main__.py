"""`python -m knyang_cam` / `knyang-cam`: argument parsing; the loop lives in app.py."""
from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__, bundled
from .bundled import resolve  # noqa: F401  (bench/ scripts import it from here)
from .errors import OneLineParser, UserError, exit_status, paths_usable


def build_parser() -> argparse.ArgumentParser:
    """The `knyang-cam` argument parser; a bad argument is one `error:` line on stderr and exit status 2."""
    p = OneLineParser(prog="knyang-cam", description="Name your cats live from a webcam or a video.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--source", default="0",
                   help="webcam index, /dev/videoN, stream URL (rtsp://, http(s)://), video file, folder "
                        "of images, glob, 'demo' (the bundled clip) or 'synthetic' (default: 0)")
    p.add_argument("--model", help="model directory (default: app.model in the config, models/knyang)")
    p.add_argument("--config", help="YAML config file (default: the project's config.yaml)")
    p.add_argument("--crop", choices=("center", "detect"),
                   help="detect: every cat the cat finder sees (regions.detector; the default), or center: the "
                        "largest centred square (a feeder camera)")
    p.add_argument("--headless", action="store_true", help="no window; files run as fast as possible")
    p.add_argument("--output", metavar="FILE.mp4", help="write the annotated video")
    p.add_argument("--log", metavar="FILE.jsonl", help="write one JSON line of predictions per frame ('-': to "
                                                       "stdout, the start line and summary then on stderr)")
    p.add_argument("--report", metavar="DIR", help="write a timeline, appearances CSV and contact sheet")
    p.add_argument("--max-frames", type=_positive_int, metavar="N", help="stop after N frames")
    p.add_argument("--realtime", action=argparse.BooleanOptionalAction, default=None,
                   help="play files at their own frame rate (default: on screen yes, headless no)")
    p.add_argument("--hud", action="store_true",
                   help="record the window's picture in --output: its HUD (FPS, timings, key help) and the "
                        "strip of bars beside the frame")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors: no start line, "
                                                        "progress bar or summary")
    return p


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of frames, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    """Check the paths, read the model, open the source, run the loop; the exit status, or UserError for bad input."""
    from . import app, config, console, model_dir, opencv_log, paths, sources, text

    if args.log == "-" and os.name == "posix":  # a file named "-" was written where stdout was meant
        args.log = "/dev/stdout"
    if not args.source.strip():
        raise UserError("--source is empty: give a camera index, a video file, a folder or a glob")
    for flag, value in (("--model", args.model), ("--config", args.config)):
        if value is not None and not value.strip():
            raise UserError(f"{flag} is empty: give a path, or leave {flag} out for the default")
    cfg = config.override(config.load(args.config), **{"regions.crop": args.crop, "app.realtime": args.realtime})
    text.check_font(cfg.overlay.font)
    with paths_usable():
        model = resolve(args.model or cfg.app.model)
        spec = str(bundled.path(bundled.DEMO_CLIP)) if args.source == "demo" else args.source
        paths.check_app(read_by(args, cfg, model, spec), args.output, args.log, args.report)  # before any write
        info = model_dir.read(model)  # before the label keys' folders are placed against it: it may be no model
        paths.check_app_folders(cfg.app.dataset_root, cfg.app.snapshots_dir, cfg.retrain.models_dir, model,
                                bundled.path(bundled.FINDER_DIR))
        source = sources.open_source(spec, cfg.camera)
    if args.quiet:
        # A stalled stream makes OpenCV's reader warn once per timeout (hundreds of lines in minutes);
        # the app says itself when it reconnects or gives up.
        opencv_log.quiet()
    else:
        source = console.with_progress(source, args.max_frames)
    # A log on stdout is read by a program (`--log - | jq`): the lines for the user go to stderr, off its stream.
    out = open(os.devnull, "w") if args.quiet else sys.stderr if args.log and paths.descriptor(args.log) == 1 \
        else sys.stdout
    return app.run(cfg, source, info, window=not args.headless, output=args.output, log=args.log,
                   report=args.report, max_frames=args.max_frames, out=out, record_hud=args.hud)


def read_by(args: argparse.Namespace, cfg, model: Path, spec: str) -> list:
    """Every file and folder the run reads or adds to, which no output may overwrite."""
    from . import paths

    return paths.source_inputs(spec) + [
        paths.Input("--model", model, folder=True),
        paths.Input("--config" if args.config else "config", Path(args.config) if args.config
                    else bundled.path(bundled.CONFIG_FILE)),
        paths.Input("cat finder", bundled.path(bundled.FINDER_DIR), folder=True),
        paths.Input("dataset (app.dataset_root)", Path(cfg.app.dataset_root), folder=True),
        paths.Input("snapshots (app.snapshots_dir)", Path(cfg.app.snapshots_dir), folder=True),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """The `knyang-cam` entry point: parse `argv` (None: sys.argv), run; the exit status (2 user error, 130 Ctrl-C)."""
    from .errors import survive_broken_pipe

    args = build_parser().parse_args(argv)
    try:
        return survive_broken_pipe(lambda: exit_status(lambda: run(args)))
    except KeyboardInterrupt as e:  # while loading, before the loop's handler; or a second signal
        return 128 + (e.args[0] if e.args else signal.SIGINT)


if __name__ == "__main__":
    sys.exit(main())
