"""One-line errors for command-line tools."""
from __future__ import annotations

import functools
import sys
from typing import Callable


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit code 2, no traceback."""


def cli_entry(main: Callable[[], object]) -> Callable[[], None]:
    """Run ``main``; a :class:`UserError` becomes ``error: <message>`` on stderr and exit 2."""

    @functools.wraps(main)
    def wrapper() -> None:
        try:
            main()
        except UserError as exc:
            print(f'error: {exc}', file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print('interrupted', file=sys.stderr)
            sys.exit(130)

    return wrapper
