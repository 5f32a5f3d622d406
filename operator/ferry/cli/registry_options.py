"""Options and the run wrapper shared by the registry commands (models, versions, copy-model-version).

Flags keep mlflow-export-import's spelling and its ``BOOLEAN``-valued style (``--delete-model
True``), so scripts written for it run unchanged. Databricks-only flags are accepted and, when set,
answered with one warning. The tracking server comes from ``MLFLOW_TRACKING_URI`` as for the peer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ferry.cli.common import one_line_errors
from ferry.cli.options import boolean as flag
from ferry.cli.options import (
    command,
    directory,
    rename_file,
    report,
    split_list,
    tracking_uri,
    warn_databricks_only,
    workers_and_quiet,
)
from ferry.errors import InputError, UsageError
from ferry.outcome import Outcome
from ferry.progress import ProgressSink, terminal_sink
from ferry.tracking.client import TrackingClient

__all__ = ["Context", "UsageError", "command", "flag", "rename_file", "split_list", "workers_and_quiet"]

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

model = click.option("--model", required=True, help="Registered model name.")
output_dir = directory("--output-dir", "Output directory.")
input_dir = directory("--input-dir", "Input directory.")

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


@dataclass
class Context:
    workers: int
    quiet: bool

    def client(self, uri: str | None = None) -> TrackingClient:
        return TrackingClient(uri or tracking_uri())

    def progress(self, description: str) -> ProgressSink | None:
        return terminal_sink(description, quiet=self.quiet)


def run_command(fn: Callable[..., Outcome | None]) -> Callable[..., None]:
    """Build the `Context`, warn about Databricks-only options, report the `Outcome` and exit with it."""
    @functools.wraps(fn)
    @one_line_errors
    def wrapper(**kwargs: Any) -> None:
        ctx = Context(workers=kwargs.pop("workers"), quiet=kwargs.pop("quiet"))
        warn_databricks_only(**{k: kwargs.pop(k) for k in DATABRICKS_ONLY if k in kwargs})
        outcome = fn(ctx, **kwargs)
        if outcome is not None:
            report(outcome)
    return wrapper


def names_argument(value: str) -> str | list[str]:
    """``all``, ``prefix*``, a ``.txt`` file of names, or a comma list (the peer's --models)."""
    if value.endswith(".txt"):
        path = Path(value)
        if not path.is_file():
            raise InputError(f"{value}: no such file")
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if value == "all" or value.endswith("*"):
        return value
    return split_list(value)


webhook_secrets_file = click.option(
    "--webhook-secrets-file", type=click.Path(),
    help="JSON or YAML mapping of webhook name to signing secret (or a directory of one file per webhook) for "
    "the webhooks under webhooks/, which are exported without them. A webhook it does not name is imported "
    "without a secret and reported; an empty value means it has none.")


def model_import_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The flags import-models and import-all share, with the peer's names: renames, source tags and
    user, the compatibility flags, and the webhooks' secrets."""
    for option in reversed([
        click.option("--experiment-rename-file", help="File of 'old_name,new_name' lines renaming experiments."),
        click.option("--model-rename-file", help="File of 'old_name,new_name' lines renaming models."),
        flag("--import-source-tags", "Record the source objects' fields as 'mlflow_exim.*' tags."),
        flag("--use-src-user-id", "Set each run's user to the source run's user."),
        flag("--use-threads", "Accepted for compatibility; see --workers."),
        flag("--verbose", "Accepted for compatibility."),
        webhook_secrets_file,
    ]):
        fn = option(fn)
    return fn
