"""The exception types that mean "we cannot do what the user asked", and the one-line handler.

Entry points turn them into one line on stderr: a UserError (the user's input: a path,
a camera, a config value, a model) exits with status 2, an OutputError (a real I/O
failure while writing, such as a full disk) with status 1. Anything else is a bug and
keeps its traceback.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

EXIT_BROKEN_PIPE = 128 + 13  # as if killed by SIGPIPE, like other command-line tools


class UserError(Exception):
    """A problem with the user's input: a path, a camera, a config value, a model."""

    exit_code = 2


class OutputError(UserError):
    """Writing an output failed for a reason outside the program (disk full, file too large)."""

    exit_code = 1


def exit_status(command: Callable[[], int]) -> int:
    """Run a command line's body: a UserError becomes one `error: ...` line on stderr and its status."""
    try:
        return command()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code


def survive_broken_pipe(command: Callable[[], int]) -> int:
    """Run `command`; a reader that went away (`... | head`) ends it quietly, without a traceback."""
    try:
        status = command()
        if sys.stdout is not None:  # None when started with stdout closed (`>&-`): nothing to flush
            sys.stdout.flush()
        return status
    except BrokenPipeError:
        # Python flushes stdout again at exit, which would raise once more: point it at nothing.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one `error: ...` line and exit status 2, like UserError."""

    def error(self, message: str) -> NoReturn:
        """Print `message` as one `error: ... (see PROG --help)` line on stderr and exit with status 2."""
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


@contextmanager
def paths_usable() -> Iterator[None]:
    """An OSError from looking at the user's paths (a name over 255 bytes, a folder that cannot be searched:
    Path's tests raise it) as one UserError line naming the path, not a traceback."""
    try:
        yield
    except OSError as e:
        raise UserError(f"cannot use {e.filename or 'a path'}: {e.strerror or e}") from None


@contextmanager
def native_lines_dropped(pattern: str) -> Iterator[None]:
    """Drop the lines matching `pattern` (a regex, from their start) that native libraries print on
    file descriptor 2 meanwhile (libjpeg's warnings, TensorFlow's start-up); the rest is passed on."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            drop = re.compile(pattern)
            kept = [line for line in caught.read().decode("utf-8", "replace").splitlines(True)
                    if not drop.match(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
