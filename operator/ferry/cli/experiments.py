"""``export-experiment``, ``import-experiment`` and the bulk ``export-experiments`` / ``import-experiments``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ferry.cli.common import one_line_errors
from ferry.cli.options import (
    boolean,
    command,
    directory,
    imported,
    rename_file,
    report,
    split_list,
    text,
    tracking_uri,
    workers_and_quiet,
    workspace_export,
    workspace_export_flags,
    workspace_import,
    workspace_import_flags,
)
from ferry.engine import experiments as exp_engine
from ferry.engine import experiments_bulk
from ferry.engine.layout import not_carried, with_not_carried
from ferry.engine.workspace_objects import reported
from ferry.options import WorkspaceExportOptions, WorkspaceImportOptions
from ferry.progress import Tracker, terminal_sink
from ferry.tracking import TrackingClient


def mlflow3_objects(fn: Any) -> Any:
    """The flags of an experiment's MLflow 3 objects (the resources' includeLoggedModels, includeTraces, tracesSince)."""
    fn = text("--traces-since", "Only export traces whose request started at or after this UTC time "
                                "(YYYY-MM-DD[ HH:MM:SS] or epoch ms).")(fn)
    fn = boolean("--include-traces", "Export the experiments' traces.", default=True)(fn)
    return boolean("--include-logged-models", "Export the experiments' MLflow 3 logged models.", default=True)(fn)


RUN_START_TIME_HELP = ("Only export runs started after this UTC time (inclusive). "
                       "Format: YYYY-MM-DD or YYYY-MM-DD HH:MM:SS.")
RUNS_UNTIL_HELP = ("Only export runs started before this UTC time (exclusive). Use with --run-start-time to "
                   "define a time window. Format: YYYY-MM-DD or YYYY-MM-DD HH:MM:SS.")


@command("Exports an experiment to a directory.")
@text("--experiment", "Experiment name or ID.", required=True)
@directory("--output-dir", "Output directory.")
@text("--run-ids", "List of run IDs to export (comma seperated).")
@text("--run-start-time", RUN_START_TIME_HELP)
@text("--runs-until", RUNS_UNTIL_HELP)
@boolean("--export-deleted-runs", "Export deleted runs.")
@boolean("--check-nested-runs", "Check if run in the 'run-ids' option is a parent of nested runs and export "
                                "all the nested runs.")
@workspace_export_flags()
@mlflow3_objects
@workers_and_quiet
@one_line_errors
def export_experiment(experiment: str, output_dir: str, run_ids: str | None,
                      run_start_time: str | None, runs_until: str | None, export_deleted_runs: bool,
                      check_nested_runs: bool, include_logged_models: bool, include_traces: bool,
                      traces_since: str | None, workers: int, quiet: bool, workspace: WorkspaceExportOptions) -> None:
    exp_engine.run_window(run_start_time, runs_until)
    since = exp_engine.parse_run_start_time(traces_since, "--traces-since")
    client = TrackingClient(tracking_uri())
    side = workspace_export(client, workspace)
    done = exp_engine.export_experiment(
        client, experiment, Path(output_dir), run_ids=split_list(run_ids) or None, run_start_time=run_start_time,
        runs_until=runs_until, export_deleted_runs=export_deleted_runs, check_nested_runs=check_nested_runs,
        workers=workers,
        include_logged_models=include_logged_models, include_traces=include_traces,
        traces_since=since, workspace=side,
        tracker=Tracker(terminal_sink("export-experiment", quiet=quiet)))
    report(reported(done.outcome(f"Exported experiment '{done.name}': {len(done.ok_runs)} runs "
                                 f"({done.skipped_runs} already there), {len(done.failed)} failed, to {output_dir}"),
                    side))


@command("Imports an experiment from a directory.")
@text("--experiment-name", "Destination experiment name.", required=True)
@directory("--input-dir", "Input directory.")
@workspace_import_flags()
@boolean("--import-source-tags", "Import source information for MLflow objects and create tags in destination object.")
@boolean("--use-src-user-id", "Set the destination user field to the source user field (open-source MLflow only).")
@workers_and_quiet
@one_line_errors
def import_experiment(experiment_name: str, input_dir: str, import_source_tags: bool,
                      use_src_user_id: bool, workers: int, quiet: bool, workspace: WorkspaceImportOptions) -> None:
    exp_engine.read_experiment(Path(input_dir))  # a bad directory fails before anything is created
    client = TrackingClient(tracking_uri())
    side = workspace_import(client, workspace)
    done = exp_engine.import_experiment(
        client, Path(input_dir), experiment_name, import_source_tags=import_source_tags,
        use_src_user_id=use_src_user_id, workers=workers, workspace=side,
        tracker=Tracker(terminal_sink("import-experiment", quiet=quiet)))
    skipped = sum(r.skipped for r in done.runs)
    report(imported(with_not_carried(done.outcome(f"Imported {len(done.runs)} runs ({skipped} already there) into "
                                                  f"experiment '{experiment_name}', {len(done.failed)} failed"),
                                     not_carried(Path(input_dir))), side))


@command("Exports experiments to a directory.")
@text("--experiments", "Experiment names or IDs (comma delimited) or filename ending with '.txt' containing them. "
                       "'all' will export all experiments.", required=True)
@directory("--output-dir", "Output directory.")
@text("--run-start-time", RUN_START_TIME_HELP)
@text("--runs-until", RUNS_UNTIL_HELP)
@boolean("--export-deleted-runs", "Export deleted runs.")
@workspace_export_flags()
@boolean("--use-threads", "Process in parallel using threads (see --workers).")
@mlflow3_objects
@workers_and_quiet
@one_line_errors
def export_experiments(experiments: str, output_dir: str, run_start_time: str | None,
                       runs_until: str | None, export_deleted_runs: bool, use_threads: bool,
                       include_logged_models: bool, include_traces: bool, traces_since: str | None, workers: int,
                       quiet: bool, workspace: WorkspaceExportOptions) -> None:
    exp_engine.run_window(run_start_time, runs_until)
    since = exp_engine.parse_run_start_time(traces_since, "--traces-since")
    client = TrackingClient(tracking_uri())
    side = workspace_export(client, workspace)
    bulk = experiments_bulk.export_experiments(
        client, experiments, Path(output_dir), run_start_time=run_start_time, runs_until=runs_until,
        export_deleted_runs=export_deleted_runs,
        workers=workers, tracker=Tracker(terminal_sink("export-experiments", quiet=quiet)),
        options={"experiments": experiments, "output_dir": output_dir, "run_start_time": run_start_time,
                 "runs_until": runs_until, "export_deleted_runs": export_deleted_runs, "use_threads": use_threads,
                 "export_permissions": workspace.export_permissions, "notebook_formats": workspace.notebook_formats},
        include_logged_models=include_logged_models, include_traces=include_traces,
        traces_since=since, workspace=side)
    counts = bulk.counts
    report(reported(bulk.outcome(f"Exported {counts.experiments} experiments, {counts.runs} runs, to {output_dir}",
                                 path=output_dir), side))


@command("Imports experiments from a directory.")
@directory("--input-dir", "Input directory.")
@workspace_import_flags()
@boolean("--import-source-tags", "Import source information for MLflow objects and create tags in destination object.")
@boolean("--use-src-user-id", "Set the destination user field to the source user field (open-source MLflow only).")
@text("--experiment-rename-file", "File with experiment names replacements: comma-delimited line such as "
                                  "'old_name,new_name'.")
@boolean("--use-threads", "Process in parallel using threads (see --workers).")
@workers_and_quiet
@one_line_errors
def import_experiments(input_dir: str, import_source_tags: bool, use_src_user_id: bool,
                       experiment_rename_file: str | None, use_threads: bool, workers: int, quiet: bool,
                       workspace: WorkspaceImportOptions) -> None:
    renames = rename_file(experiment_rename_file)
    experiments_bulk.read_experiments_index(Path(input_dir))
    client = TrackingClient(tracking_uri())
    side = workspace_import(client, workspace)
    bulk = experiments_bulk.import_experiments(
        client, Path(input_dir), renames=renames, import_source_tags=import_source_tags,
        use_src_user_id=use_src_user_id, workers=workers, workspace=side,
        tracker=Tracker(terminal_sink("import-experiments", quiet=quiet)))
    counts = bulk.counts
    report(imported(with_not_carried(bulk.outcome(f"Imported {counts.experiments} experiments, {counts.runs} runs"),
                                     not_carried(Path(input_dir))), side))
