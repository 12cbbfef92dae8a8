"""The one exception type that means "the user asked for something we cannot do".

Entry points turn it into one line on stderr and exit status 2; anything else is a
bug and keeps its traceback.
"""


import os
import sys
from typing import Callable

EXIT_BROKEN_PIPE = 128 + 13  # as if killed by SIGPIPE, like other command-line tools


class UserError(Exception):
    """A problem with the user's input: a path, a camera, a config value, a model."""

    exit_code = 2


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
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # Python flushes stdout again at exit, which would raise once more: point it at nothing.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
