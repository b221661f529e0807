"""One-line errors for command-line tools."""
from __future__ import annotations

import functools
import sys
from typing import Callable


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit code 2, no traceback."""


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal after saving a checkpoint: the message, exit 128 + signal."""

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def cli_entry(main: Callable[[], object]) -> Callable[[], None]:
    """Run ``main``; a :class:`UserError` becomes ``error: <message>`` on stderr and exit 2."""

    @functools.wraps(main)
    def wrapper() -> None:
        try:
            main()
        except UserError as exc:
            print(f'error: {exc}', file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt as exc:
            print(str(exc) or 'interrupted', file=sys.stderr)
            sys.exit(getattr(exc, 'exit_code', 130))

    return wrapper
