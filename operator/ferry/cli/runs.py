"""``export-run`` and ``import-run``: mlflow-export-import's commands, same flags."""

from __future__ import annotations

from pathlib import Path

from ferry.cli.common import one_line_errors
from ferry.cli.options import boolean, command, directory, report, text, tracking_uri, warn_databricks_only
from ferry.engine import runs as run_engine
from ferry.engine.experiments import finish_links
from ferry.outcome import Counts, Outcome
from ferry.tracking import TrackingClient


@command("Exports a run to a directory.")
@text("--run-id", "Run ID.", required=True)
@directory("--output-dir", "Output directory.")
@text("--notebook-formats", "Databricks notebook formats. Values are SOURCE, HTML, JUPYTER or DBC (comma separated).",
      default="")
@one_line_errors
def export_run(run_id: str, output_dir: str, notebook_formats: str) -> None:
    warn_databricks_only(notebook_formats=notebook_formats)
    client = TrackingClient(tracking_uri())
    done = run_engine.export_run(client, run_id, Path(output_dir), resume=False)
    report(Outcome.of(Counts(runs=1, bytes=done.nbytes), message=f"Exported run {run_id} to {output_dir}",
                      path=output_dir))


@command("Imports a run from a directory.")
@directory("--input-dir", "Input directory.")
@text("--experiment-name", "Destination experiment name.", required=True)
@boolean("--import-source-tags", "Import source information for MLflow objects and create tags in destination object.")
@boolean("--use-src-user-id", "Set the destination user field to the source user field (open-source MLflow only).")
@text("--dst-notebook-dir", "Databricks destination workspace base directory for notebook.")
@boolean("--mlmodel-fix", "Add correct run ID in destination MLmodel artifact.", default=True)
@one_line_errors
def import_run(input_dir: str, experiment_name: str, import_source_tags: bool, use_src_user_id: bool,
               dst_notebook_dir: str | None, mlmodel_fix: bool) -> None:
    warn_databricks_only(dst_notebook_dir=dst_notebook_dir)
    run_dir = Path(input_dir)
    run_engine.read_run(run_dir)  # a bad directory fails before anything is created
    client = TrackingClient(tracking_uri())
    exp = client.get_or_create_experiment(experiment_name)
    done = run_engine.import_run(client, run_dir, str(exp["experiment_id"]), import_source_tags=import_source_tags,
                                 use_src_user_id=use_src_user_id, mlmodel_fix=mlmodel_fix, defer_delete=True)
    finish_links(client, [done])
    what = "already imported as" if done.skipped else "imported as"
    report(Outcome.of(Counts(runs=1), message=f"Run {done.src_run_id} {what} {done.dst_run_id} "
                                              f"in experiment '{experiment_name}'"))
