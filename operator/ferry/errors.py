"""The errors a user can cause, each turned by the CLI into one line and an exit code.

Anything else that escapes is a bug and keeps its traceback. Engines raise these instead of
printing, so the same failure reads the same from a terminal, a Job's termination message or a
resource's status.
"""

from __future__ import annotations


class FerryError(Exception):
    """A failure explained in one line; `exit_code` is what the command exits with."""

    exit_code: int = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class UsageError(FerryError):
    """Bad flags or arguments: exit code 2, like click and argparse."""

    exit_code = 2


class NotFoundError(FerryError):
    """An experiment, run, model, version or input directory that does not exist."""


class ServerError(FerryError):
    """A server that cannot be reached, rejects our credentials, or fails to answer."""


class InputError(FerryError):
    """An input directory that is missing, corrupt, or not an export."""


class PartialFailure(FerryError):
    """Some objects were done and some failed; the failures were listed. Exit code 3."""

    exit_code = 3
