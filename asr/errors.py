"""Errors that stand for a user's mistake: the CLI prints them as one line, no traceback."""

import functools
import sys
from collections.abc import Callable
from typing import NoReturn


class UserError(Exception):
    """A problem with the user's input (a file, a config key, a text) that one sentence explains."""


class AudioError(UserError):
    """An audio file is missing, empty, truncated or not audio."""


class TextError(UserError):
    """A transcript holds characters the vocabulary cannot spell."""


EXIT_USER_ERROR = 2


def exit_with_message(message: str) -> NoReturn:
    """Print a user's mistake as one line on stderr and exit with status 2."""
    print(f"asr: error: {message}", file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)


def reports_user_errors(func: Callable) -> Callable:
    """Wrap an entry point so a UserError becomes one line and exit status 2, no traceback.

    Hydra prints a traceback for any exception escaping its task function; SystemExit passes
    through it untouched, which is why the conversion happens inside the task.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except UserError as error:
            exit_with_message(str(error))

    return wrapper
