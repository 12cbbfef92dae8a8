"""The exception types that mean "we cannot do what the user asked", and the one-line handler.

Entry points turn them into one line on stderr: a UserError (the user's input: a path,
a camera, a config value, a model) exits with status 2, an OutputError (a real I/O
failure while writing, such as a full disk) with status 1. Anything else is a bug and
keeps its traceback.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable, NoReturn


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


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one `error: ...` line and exit status 2, like UserError."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")
