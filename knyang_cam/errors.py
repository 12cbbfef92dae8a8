"""The one exception type that means "the user asked for something we cannot do".

Entry points turn it into one line on stderr and exit status 2; anything else is a
bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the user's input: a path, a camera, a config value, a model."""

    exit_code = 2
