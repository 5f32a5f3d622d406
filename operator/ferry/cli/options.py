"""Click building blocks shared by the seed-compatible commands.

Flags keep mlflow-export-import's names and its BOOLEAN style (``--export-deleted-runs True``), so
existing scripts run unchanged. Usage mistakes print one ``Error:`` line (exit 2) instead of
click's usage block, like every other failure of these commands.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, get_args

import click

from ferry.cli.common import one_line_errors
from ferry.engine.workspace_objects import WorkspaceExport, WorkspaceImport, reported
from ferry.errors import InputError, UsageError
from ferry.options import NotebookFormat, WorkspaceExportOptions, WorkspaceImportOptions
from ferry.outcome import Outcome, Phase
from ferry.tracking import TrackingClient
from ferry.tracking.databricks import is_databricks_uri, refuse_unity_catalog

F = TypeVar("F", bound=Callable[..., Any])
S = TypeVar("S")


class OneLineCommand(click.Command):
    """A click command whose usage errors are one line on stderr and exit code 2."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            rc = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as err:
            print(f"Error: {' '.join(err.format_message().split())}", file=sys.stderr)
            sys.exit(err.exit_code)
        except click.Abort:
            print("Error: aborted", file=sys.stderr)
            sys.exit(1)
        sys.exit(rc if isinstance(rc, int) else 0)


def command(help: str) -> Callable[[F], click.Command]:
    return click.command(cls=OneLineCommand, help=help)  # type: ignore[return-value]


def boolean(name: str, help: str, default: bool = False) -> Callable[[F], F]:
    """A BOOLEAN-valued flag: ``--name True|False``."""
    return click.option(name, type=bool, default=default, show_default=True, help=help)


class ExportDirectory(click.ParamType):
    """A directory on this machine (or a mounted volume), or an ``s3://bucket/prefix``; other URLs are refused.

    ``gs://bucket/x`` read as a path is a local folder named ``gs:``: the command would say it
    wrote the bucket while the bucket stays empty.
    """

    name = "directory"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        scheme, sep, _ = text.partition("://")
        if sep and scheme and "/" not in scheme and scheme != "s3":
            self.fail(f"'{text}' is a URL; {scheme}:// is not supported here: give a local directory, "
                      "a mounted volume or s3://bucket/prefix", param, ctx)
        return text


DIRECTORY = ExportDirectory()
S3_ENDPOINT_FLAG = "--s3-endpoint-url"

# Spool directories the messages name by the location the user gave (s3://...).
_shown_as: dict[str, str] = {}


def directory(name: str, help: str) -> Callable[[F], F]:
    """A required ``--output-dir`` / ``--input-dir``: a local directory or ``s3://bucket/prefix``.

    With ``s3://``, the command runs on a local spool directory that `ferry.storage.transfer`
    streams to the bucket (``--output-dir``) or fills from it (``--input-dir``), and the command
    gets ``--s3-endpoint-url`` for an S3-compatible endpoint.
    """
    param = name.lstrip("-").replace("-", "_")
    exporting = param == "output_dir"

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            endpoint = kwargs.pop("s3_endpoint_url", None)
            value = kwargs.get(param)
            if not isinstance(value, str) or not value.startswith("s3://"):
                return fn(*args, **kwargs)
            return _on_s3(fn, args, kwargs, param, value, endpoint, exporting)

        option = click.option(S3_ENDPOINT_FLAG, "s3_endpoint_url", default=None, metavar="URL",
                              help="S3-compatible endpoint for an s3:// directory (MinIO, SeaweedFS ...). "
                              "Default: FERRY_S3_ENDPOINT_URL, AWS_ENDPOINT_URL_S3, else AWS.")
        return option(click.option(name, type=DIRECTORY, required=True, help=f"{help} A local directory or "
                                   "s3://bucket/prefix.")(wrapper))  # type: ignore[return-value]
    return decorate


@one_line_errors
def _on_s3(fn: Callable[..., Any], args: Any, kwargs: dict[str, Any], param: str, url: str,
           endpoint: str | None, exporting: bool) -> Any:
    from ferry.storage import transfer  # boto3 is loaded only for s3:// directories
    from ferry.storage.client import flag
    from ferry.storage.location import S3Location

    location = S3Location.parse(url, endpoint=endpoint,
                                insecure_skip_tls_verify=flag("FERRY_S3_INSECURE_SKIP_TLS_VERIFY"))
    spooling = transfer.exporting(location) if exporting else transfer.importing(location)
    with spooling as spool:
        _shown_as[str(spool.root)] = location.url
        try:
            return fn(*args, **{**kwargs, param: str(spool.root)})
        finally:
            _shown_as.pop(str(spool.root), None)


def _shown(text: str) -> str:
    for local, url in _shown_as.items():
        text = text.replace(local, url)
    return text


def text(name: str, help: str, *, required: bool = False, default: str | None = None) -> Callable[[F], F]:
    extra: dict[str, Any] = {} if default is None else {"default": default}  # click 8.5: None is a value
    return click.option(name, type=str, required=required, help=help, **extra)


def workers_and_quiet(fn: F) -> F:
    fn = click.option("--workers", type=click.IntRange(1, 64), default=4, show_default=True,
                      help="Objects processed concurrently.")(fn)
    return click.option("--quiet", is_flag=True, default=False, help="No progress bar.")(fn)


def tracking_uri() -> str:
    """The server to talk to, from ``MLFLOW_TRACKING_URI`` as mlflow-export-import reads it."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if not uri:
        raise UsageError("MLFLOW_TRACKING_URI is not set: point it at the MLflow tracking server")
    refuse_unity_catalog(uri, "MLFLOW_TRACKING_URI")
    refuse_unity_catalog(os.environ.get("MLFLOW_REGISTRY_URI", "").strip(), "MLFLOW_REGISTRY_URI")
    if not uri.startswith(("http://", "https://")) and not is_databricks_uri(uri):
        raise UsageError(f"MLFLOW_TRACKING_URI '{uri}' is neither an http(s) URL of an MLflow tracking server "
                         "nor 'databricks' / 'databricks://<profile>'")
    return uri


def split_list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def warn_databricks_only(**given: Any) -> None:
    """One warning line naming the Databricks-only options that were set; they do nothing here.

    Against a Databricks workspace (a command that does not carry them), the line says so instead.
    """
    names = _flag_names(given)
    if not names:
        return
    if is_databricks_uri(os.environ.get("MLFLOW_TRACKING_URI", "").strip()):
        print(f"Warning: {names}: not carried by this command; ignored", file=sys.stderr)
    else:
        print(f"Warning: {names} apply only to Databricks, not to open-source MLflow; ignored", file=sys.stderr)


def _flag_names(given: dict[str, Any]) -> str:
    return ", ".join(f"--{k.replace('_', '-')}" for k, v in given.items() if v)


# -- the Databricks workspace's own objects: notebooks and permissions ----------------------------

NOTEBOOK_FORMATS = get_args(NotebookFormat)
NOTEBOOK_FORMATS_HELP = "Databricks notebook formats. Values are SOURCE, HTML, JUPYTER or DBC (comma separated)."


def _notebook_formats(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str]:
    formats = list(dict.fromkeys(f.upper() for f in split_list(value)))
    unknown = [f for f in formats if f not in NOTEBOOK_FORMATS]
    if unknown:
        raise click.BadParameter(f"unknown notebook format {', '.join(unknown)}: use {', '.join(NOTEBOOK_FORMATS)}",
                                 ctx, param)
    return formats


def _absolute_folder(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value and not value.startswith("/"):
        raise click.BadParameter(f"'{value}' is not a workspace folder: it must start with '/'", ctx, param)
    return value or None


def workspace_export_flags(*, permissions: bool = True) -> Callable[[F], F]:
    """``--notebook-formats`` (and ``--export-permissions``), given to the command as one
    `WorkspaceExportOptions` named ``workspace``."""
    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            options = WorkspaceExportOptions(notebook_formats=kwargs.pop("notebook_formats"),
                                             export_permissions=kwargs.pop("export_permissions", False))
            return fn(*args, workspace=options, **kwargs)

        decorated: Any = wrapper
        if permissions:
            decorated = boolean("--export-permissions", "Export Databricks permissions.")(decorated)
        return click.option("--notebook-formats", default="", callback=_notebook_formats,
                            help=NOTEBOOK_FORMATS_HELP)(decorated)  # type: ignore[no-any-return]
    return decorate


def workspace_import_flags(*, permissions: bool = True, notebook_dir: bool = True) -> Callable[[F], F]:
    """``--import-permissions`` and ``--dst-notebook-dir`` (those asked), given to the command as one
    `WorkspaceImportOptions` named ``workspace``."""
    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            options = WorkspaceImportOptions(import_permissions=kwargs.pop("import_permissions", False),
                                             dst_notebook_dir=kwargs.pop("dst_notebook_dir", None))
            return fn(*args, workspace=options, **kwargs)

        decorated: Any = wrapper
        if notebook_dir:
            decorated = click.option("--dst-notebook-dir", default=None, callback=_absolute_folder,
                                     help="Databricks destination workspace base directory for notebook.")(decorated)
        if permissions:
            decorated = boolean("--import-permissions",
                                "Import Databricks permissions using the HTTP PATCH method.")(decorated)
        return decorated  # type: ignore[no-any-return]
    return decorate


def workspace_export(client: TrackingClient, options: WorkspaceExportOptions) -> WorkspaceExport | None:
    """The workspace part of an export from `client`'s server; None, with one warning line, where
    the server is open-source MLflow."""
    return _workspace_side(client, options, WorkspaceExport)


def workspace_import(client: TrackingClient, options: WorkspaceImportOptions) -> WorkspaceImport | None:
    """The workspace part of an import into `client`'s server; None, with one warning line, where
    the destination is open-source MLflow."""
    return _workspace_side(client, options, WorkspaceImport)


def _workspace_side(client: TrackingClient, options: Any, side: Callable[[Any, Any], S]) -> S | None:
    given = options.model_dump()
    if not any(given.values()):
        return None
    if client.workspace is None:
        warn_databricks_only(**given)
        return None
    return side(client.workspace, options)


def imported(outcome: Outcome, side: WorkspaceImport | None) -> Outcome:
    """`outcome` with what `side` could not carry; one warning line for an option the export held
    nothing for (it was made from open-source MLflow, or without the matching export option)."""
    if side is None:
        return outcome
    empty = {"import_permissions": side.options.import_permissions and not side.permissions_found,
             "dst_notebook_dir": bool(side.options.dst_notebook_dir) and not side.notebooks_found}
    if any(empty.values()):
        what = " or ".join(w for w, e in zip(("permissions", "SOURCE notebooks"), empty.values(), strict=True) if e)
        how = " / ".join(f for f, e in zip(("--export-permissions", "--notebook-formats SOURCE"), empty.values(),
                                           strict=True) if e)
        print(f"Warning: {_flag_names(empty)}: the export holds no Databricks {what} (it was not made from a "
              f"Databricks workspace with {how}); nothing to import", file=sys.stderr)
    return reported(outcome, side)


def report(outcome: Outcome) -> None:
    """The summary line on stdout; the failures on stderr; exit 3 on partial failure, 1 on failure."""
    print(_shown(outcome.message))
    for failure in outcome.failed:
        print(f"Failed: {_shown(failure)}", file=sys.stderr)
    if outcome.phase is Phase.PARTIALLY_FAILED:
        sys.exit(3)
    if outcome.phase is Phase.FAILED:
        sys.exit(1)


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

