"""What every command shares: one line and an exit code for a user's mistake, never a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from ferry.errors import FerryError

P = ParamSpec("P")
R = TypeVar("R")


def one_line_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a `FerryError` into ``Error: <message>`` on stderr and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except FerryError as err:
            print(f"Error: {err.message}", file=sys.stderr)
            sys.exit(err.exit_code)
        except KeyboardInterrupt:
            print("Error: interrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper
