"""The one exception type that means "the user asked for something we cannot do".

Entry points turn it into one line on stderr and exit status 2; anything else is a
bug and keeps its traceback.
"""


import sys
from typing import Callable


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
