"""Options and the run wrapper shared by the registry commands (models, versions, copy-model-version).

Flags keep mlflow-export-import's spelling and its ``BOOLEAN``-valued style (``--delete-model
True``), so scripts written for it run unchanged. Databricks-only flags are accepted and, when set,
answered with one warning. The tracking server comes from ``MLFLOW_TRACKING_URI`` as for the peer.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ferry.cli.common import one_line_errors
from ferry.errors import InputError, PartialFailure, UsageError
from ferry.outcome import Outcome
from ferry.progress import ProgressSink, terminal_sink
from ferry.tracking.client import TrackingClient

__all__ = ["Context", "UsageError"]

DEFAULT_WORKERS = 4
Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def flag(name: str, help: str) -> Decorator:
    return click.option(name, type=bool, default=False, show_default=True, help=help)


model = click.option("--model", required=True, help="Registered model name.")
output_dir = click.option("--output-dir", required=True, help="Output directory.")
input_dir = click.option("--input-dir", required=True, help="Input directory.")

DATABRICKS_ONLY = {
    "export_permissions": flag("--export-permissions", "Databricks only: export permissions."),
    "import_permissions": flag("--import-permissions", "Databricks only: import permissions."),
    "copy_permissions": flag("--copy-permissions", "Databricks only: copy permissions."),
    "notebook_formats": click.option("--notebook-formats", default="", help="Databricks only: notebook formats."),
}


def databricks_only(*names: str) -> Decorator:
    """Accept the named Databricks-only options (``export_permissions`` ...)."""
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for name in reversed(names):
            fn = DATABRICKS_ONLY[name](fn)
        return fn
    return decorate


def engine_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--quiet", is_flag=True, help="No progress bar.")(fn)
    return click.option("--workers", type=click.IntRange(1, 64), default=DEFAULT_WORKERS, show_default=True,
                        help="Objects processed concurrently.")(fn)


@dataclass
class Context:
    workers: int
    quiet: bool

    def client(self, uri: str | None = None) -> TrackingClient:
        uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:
            raise UsageError("no tracking server: set MLFLOW_TRACKING_URI")
        return TrackingClient(uri)

    def progress(self, description: str) -> ProgressSink | None:
        return terminal_sink(description, quiet=self.quiet)


def run_command(fn: Callable[..., Outcome | None]) -> Callable[..., None]:
    """Build the `Context`, warn about Databricks-only options, report the `Outcome` and exit with it."""
    @functools.wraps(fn)
    @one_line_errors
    def wrapper(**kwargs: Any) -> None:
        ctx = Context(workers=kwargs.pop("workers"), quiet=kwargs.pop("quiet"))
        ignored = [f"--{k.replace('_', '-')}" for k in DATABRICKS_ONLY if kwargs.pop(k, None)]
        if ignored:
            print(f"Warning: {', '.join(ignored)} only apply to Databricks and are ignored", file=sys.stderr)
        outcome = fn(ctx, **kwargs)
        if outcome is None:
            return
        print(outcome.message)
        for failure in outcome.failed:
            print(f"failed: {failure}", file=sys.stderr)
        if outcome.phase != "Succeeded":
            raise PartialFailure(f"{len(outcome.failed)} objects failed")
    return wrapper


def comma_list(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def names_argument(value: str) -> str | list[str]:
    """``all``, ``prefix*``, a ``.txt`` file of names, or a comma list (the peer's --models)."""
    if value.endswith(".txt"):
        path = Path(value)
        if not path.is_file():
            raise InputError(f"{value}: no such file")
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if value == "all" or value.endswith("*"):
        return value
    return comma_list(value)


def rename_file(path: str | None) -> dict[str, str] | None:
    """``old,new`` lines as a mapping (the peer's --experiment-rename-file / --model-rename-file)."""
    if not path:
        return None
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise InputError(f"{path}: {err.strerror}") from None
    renames: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        old, sep, new = line.partition(",")
        if not sep:
            raise InputError(f"{path}:{number}: expected 'old_name,new_name'")
        renames[old.strip()] = new.strip()
    return renames

