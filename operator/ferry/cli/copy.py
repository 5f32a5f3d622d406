"""``copy-run``: one run from one tracking server to another, through a temporary directory."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from ferry.cli.common import one_line_errors
from ferry.cli.model_versions import copy_model_version as copy_model_version
from ferry.cli.options import command, report, text
from ferry.engine import runs as run_engine
from ferry.engine.experiments import finish_links
from ferry.errors import UsageError
from ferry.outcome import Counts, Outcome
from ferry.tracking import TrackingClient


def _uri(value: str | None, flag: str) -> str:
    import os

    uri = (value or os.environ.get("MLFLOW_TRACKING_URI", "")).strip()
    if not uri:
        raise UsageError(f"{flag} is not given and MLFLOW_TRACKING_URI is not set")
    return uri


@command("Copies a run from one MLflow tracking server to another.")
@text("--run-id", "Source run ID.", required=True)
@click.option("--dst-experiment-name", "--experiment-name", "experiment_name", type=str, required=True,
              help="Destination experiment name.")
@text("--src-mlflow-uri", "Source MLflow tracking server URI (default: MLFLOW_TRACKING_URI).")
@text("--dst-mlflow-uri", "Destination MLflow tracking server URI (default: MLFLOW_TRACKING_URI).")
@one_line_errors
def copy_run(run_id: str, experiment_name: str, src_mlflow_uri: str | None, dst_mlflow_uri: str | None) -> None:
    src = TrackingClient(_uri(src_mlflow_uri, "--src-mlflow-uri"))
    dst = TrackingClient(_uri(dst_mlflow_uri, "--dst-mlflow-uri"))
    done = copy_one_run(src, dst, run_id, experiment_name)
    report(Outcome.of(Counts(runs=1), message=f"Copied run {run_id} to {done.dst_run_id} in experiment "
                                              f"'{experiment_name}' at {dst.uri}"))


def copy_one_run(src: TrackingClient, dst: TrackingClient, run_id: str, experiment_name: str) -> run_engine.RunImport:
    """Export to a temporary directory and import from it; the directory is removed afterwards."""
    run = src.get_run(run_id)  # fails fast, before the destination is touched
    with tempfile.TemporaryDirectory(prefix="ferry-copy-") as tmp:
        run_engine.export_run(src, run, Path(tmp) / run_id, resume=False)
        exp = dst.get_or_create_experiment(experiment_name)
        done = run_engine.import_run(dst, Path(tmp) / run_id, str(exp["experiment_id"]), defer_delete=True)
    finish_links(dst, [done])
    return done
