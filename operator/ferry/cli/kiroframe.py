"""``kiroframe-importer``: kiroframe-importer 0.0.10's command line, on the ferry sync engine.

Same flags, same environment variables (a flag wins over its variable), same exit code 2 and
message for missing parameters; plus ``--incremental/--full``, ``--since``, ``--state-file`` and
``--workers``. Exit codes: 0 done, 1 failed, 2 bad usage, 3 done but some records failed.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from ferry.cli.common import one_line_errors
from ferry.errors import FerryError, UsageError
from ferry.kiroframe.settings import KiroframeSettings
from ferry.kiroframe.sync import Redact, run_sync
from ferry.outcome import Phase
from ferry.progress import terminal_sink

CONSOLE_FORMAT = "[%(asctime)s] %(levelname)s: %(message)s"
EXIT_CODES = {Phase.SUCCEEDED: 0, Phase.PARTIALLY_FAILED: 3, Phase.FAILED: 1}


def build_settings(options: dict[str, Any]) -> KiroframeSettings:
    """Settings from the environment, overridden by every flag that was given."""
    given = {name: value for name, value in options.items() if value is not None}
    try:
        return KiroframeSettings(**given)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "settings"
        raise UsageError(f"invalid {where}: {first['msg']}") from None


def _console_logging(settings: KiroframeSettings) -> None:
    log = logging.getLogger("ferry.kiroframe")
    log.setLevel(settings.log_level)
    log.propagate = False
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(CONSOLE_FORMAT))
    handler.addFilter(Redact(settings.token))
    log.addHandler(handler)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--import-type", help="Type of ML application (only 'mlflow'). [env IMPORT_TYPE]")
@click.option("--tracking-url", help="MLflow tracking server URL. [env TRACKING_URI]")
@click.option("--kiroframe-url", help="Kiroframe URL. [env KIROFRAME_URL]")
@click.option("--profiling-token", help="Kiroframe profiling token. [env PROFILING_TOKEN]")
@click.option("--base-dir", type=click.Path(path_type=Path),
              help="Where export folders are made (default ~/mlflow_export). [env EXPORT_BASE_DIR]")
@click.option("--include-schema-profile/--no-include-schema-profile", default=None,
              help="Include dataset schemas and profiles (default on). [env INCLUDE_SCHEMA_PROFILE]")
@click.option("--export-models/--no-export-models", default=None,
              help="Export registered models (default on). [env EXPORT_MODELS]")
@click.option("--download-artifacts/--no-download-artifacts", default=None,
              help="Download run artifacts (default off). [env DOWNLOAD_ARTIFACTS]")
@click.option("--experiment-page-size", type=int, help="Experiments per page (default 200). [env EXP_PAGE_SIZE]")
@click.option("--run-page-size", type=int, help="Runs per page (default 1000). [env RUN_PAGE_SIZE]")
@click.option("--import-to-kiroframe/--no-import-to-kiroframe", "import_to_kiroframe", default=None,
              help="Send the export to Kiroframe (default on).")
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]), default=None,
              help="Log level (default INFO).")
@click.option("--incremental/--full", default=None,
              help="Only runs changed since the watermark, or everything (default). [env INCREMENTAL]")
@click.option("--since", help="Watermark to start from: ms since the epoch or ISO 8601. [env SINCE]")
@click.option("--state-file", type=click.Path(path_type=Path),
              help="Watermark file (default <base-dir>/.kiroframe-state.json). [env STATE_FILE]")
@click.option("--workers", type=int, help="Concurrent requests to MLflow and to Kiroframe (default 4).")
@one_line_errors
def main(**options: Any) -> None:
    """Export MLflow metadata to the Kiroframe files and import them into Kiroframe."""
    settings = build_settings(options)
    try:
        settings.require()
    except UsageError as err:
        sys.stderr.write(f"ERROR: {err.message}\n")
        sys.exit(err.exit_code)
    _console_logging(settings)
    quiet = logging.getLevelName(settings.log_level) > logging.INFO
    outcome = run_sync(settings, on_progress=terminal_sink("kiroframe sync", quiet=quiet))
    if outcome.phase is Phase.FAILED:
        raise FerryError(outcome.message)
    logging.getLogger("ferry.kiroframe").info("%s", outcome.message)
    for failure in outcome.failed:
        click.echo(f"failed: {failure}", err=True)
    sys.exit(EXIT_CODES[outcome.phase])
