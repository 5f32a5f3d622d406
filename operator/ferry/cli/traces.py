"""``export-trace``, ``import-trace``, ``export-traces``, ``import-traces``: mlflow-export-import's flags.

``--traces-since`` is ours: an incremental export of the traces started at or after a time.
"""

from __future__ import annotations

import click

from ferry.cli.common import one_line_errors
from ferry.cli.options import command, directory, report, text, tracking_uri
from ferry.engine import traces as engine
from ferry.engine.experiments import parse_run_start_time
from ferry.progress import terminal_sink
from ferry.tracking import TrackingClient

quiet = click.option("--quiet", is_flag=True, default=False, help="No progress bar.")


def _since(value: str | None) -> int | None:
    return parse_run_start_time(value, "--traces-since")


@command("Export a trace to a directory.")
@text("--request-id", "Request ID.", required=True)
@directory("--output-dir", "Output directory.")
@one_line_errors
def export_trace(request_id: str, output_dir: str) -> None:
    report(engine.export_trace(TrackingClient(tracking_uri()), request_id, output_dir))


@command("Import a trace from a directory written by export-trace (ours or mlflow-export-import's).")
@directory("--input-dir", "Input directory.")
@text("--experiment-name", "Destination experiment name.", required=True)
@one_line_errors
def import_trace(input_dir: str, experiment_name: str) -> None:
    report(engine.import_trace(TrackingClient(tracking_uri()), input_dir, experiment_name))


@command("Export the traces of experiments to a directory.")
@text("--experiment-ids", "List of experiment IDs (comma delimited). For example, '1,2'. "
      "'all' will export the traces of all experiments.", required=True)
@directory("--output-dir", "Output directory.")
@text("--traces-since", "Only export traces started at or after this UTC time (YYYY-MM-DD[ HH:MM:SS]) "
      "or epoch milliseconds.")
@quiet
@one_line_errors
def export_traces(experiment_ids: str, output_dir: str, traces_since: str | None, quiet: bool) -> None:
    since = _since(traces_since)
    report(engine.export_traces(TrackingClient(tracking_uri()), experiment_ids, output_dir, traces_since=since,
                                progress=terminal_sink("export-traces", quiet=quiet)))


@command("Import traces from a directory written by export-traces (ours or mlflow-export-import's).")
@directory("--input-dir", "Input directory.")
@text("--experiment-name", "Import every trace into this experiment. "
      "Default: each into an experiment named as its source experiment.")
@quiet
@one_line_errors
def import_traces(input_dir: str, experiment_name: str | None, quiet: bool) -> None:
    report(engine.import_traces(TrackingClient(tracking_uri()), input_dir, experiment_name=experiment_name,
                                progress=terminal_sink("import-traces", quiet=quiet)))
