"""``export-run`` and ``import-run``: mlflow-export-import's commands, same flags."""

from __future__ import annotations

from pathlib import Path

from ferry.cli.common import one_line_errors
from ferry.cli.options import (
    boolean,
    command,
    directory,
    imported,
    report,
    text,
    tracking_uri,
    workspace_export,
    workspace_export_flags,
    workspace_import,
    workspace_import_flags,
)
from ferry.engine import runs as run_engine
from ferry.engine.experiments import finish_links
from ferry.engine.workspace_objects import reported
from ferry.options import WorkspaceExportOptions, WorkspaceImportOptions
from ferry.outcome import Counts, Outcome
from ferry.tracking import TrackingClient


@command("Exports a run to a directory.")
@text("--run-id", "Run ID.", required=True)
@directory("--output-dir", "Output directory.")
@workspace_export_flags(permissions=False)
@one_line_errors
def export_run(run_id: str, output_dir: str, workspace: WorkspaceExportOptions) -> None:
    client = TrackingClient(tracking_uri())
    side = workspace_export(client, workspace)
    done = run_engine.export_run(client, run_id, Path(output_dir), resume=False, workspace=side)
    report(reported(Outcome.of(Counts(runs=1, bytes=done.nbytes), message=f"Exported run {run_id} to {output_dir}",
                               path=output_dir), side))


@command("Imports a run from a directory.")
@directory("--input-dir", "Input directory.")
@text("--experiment-name", "Destination experiment name.", required=True)
@boolean("--import-source-tags", "Import source information for MLflow objects and create tags in destination object.")
@boolean("--use-src-user-id", "Set the destination user field to the source user field (open-source MLflow only).")
@workspace_import_flags(permissions=False)
@boolean("--mlmodel-fix", "Add correct run ID in destination MLmodel artifact.", default=True)
@one_line_errors
def import_run(input_dir: str, experiment_name: str, import_source_tags: bool, use_src_user_id: bool,
               mlmodel_fix: bool, workspace: WorkspaceImportOptions) -> None:
    run_dir = Path(input_dir)
    run_engine.read_run(run_dir)  # a bad directory fails before anything is created
    client = TrackingClient(tracking_uri())
    side = workspace_import(client, workspace)
    exp = client.get_or_create_experiment(experiment_name)
    done = run_engine.import_run(client, run_dir, str(exp["experiment_id"]), import_source_tags=import_source_tags,
                                 use_src_user_id=use_src_user_id, mlmodel_fix=mlmodel_fix, defer_delete=True,
                                 workspace=side)
    finish_links(client, [done])
    what = "already imported as" if done.skipped else "imported as"
    report(imported(Outcome.of(Counts(runs=1), message=f"Run {done.src_run_id} {what} {done.dst_run_id} "
                                                       f"in experiment '{experiment_name}'"), side))
