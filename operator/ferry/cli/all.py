"""``export-all`` and ``import-all``: a whole tracking server, with mlflow-export-import's flags."""

from __future__ import annotations

import click

from ferry.cli import registry_options as opts
from ferry.cli.options import (
    imported,
    workspace_export,
    workspace_export_flags,
    workspace_import,
    workspace_import_flags,
)
from ferry.engine import experiments, server_bulk, webhooks
from ferry.engine.models import parse_stages
from ferry.options import ExportOptions, WorkspaceExportOptions, WorkspaceImportOptions


@opts.command("Export the entire tracking server: every registered model, experiment and run, the "
              "experiments' logged models, traces and scorers, the prompts, the evaluation datasets and the registry's "
              "webhooks (without their signing secrets).")
@opts.output_dir
@opts.flag("--export-latest-versions", "Export the latest version of each stage instead of all versions.")
@click.option("--stages", help="Stages to export (comma separated): Production, Staging, Archived, None. "
              "Default is all stages and all versions.")
@click.option("--run-start-time", help="Only export runs started at or after this UTC time "
              "(YYYY-MM-DD or YYYY-MM-DD HH:MM:SS).")
@click.option("--runs-until", help="Only export runs started before this UTC time (exclusive); with "
              "--run-start-time, a time window (YYYY-MM-DD or YYYY-MM-DD HH:MM:SS).")
@opts.flag("--export-deleted-runs", "Export deleted runs.")
@opts.flag("--export-version-model", "Also export each version's registered MLflow model files.")
@workspace_export_flags()
@opts.flag("--use-threads", "Accepted for compatibility; see --workers.")
@opts.workers_and_quiet
@opts.run_command
def export_all(ctx: opts.Context, output_dir: str, export_latest_versions: bool, stages: str | None,
               run_start_time: str | None, runs_until: str | None, export_deleted_runs: bool,
               export_version_model: bool, use_threads: bool, workspace: WorkspaceExportOptions):
    experiments.run_window(run_start_time, runs_until)  # a bad time fails before anything is read
    options = ExportOptions(stages=parse_stages(stages), export_latest_versions=export_latest_versions,
                            export_version_model=export_version_model, export_deleted_runs=export_deleted_runs,
                            run_start_time=run_start_time)
    client = ctx.client()
    return server_bulk.export_all(client, output_dir, options, runs_until=runs_until, workers=ctx.workers,
                                  progress=ctx.progress("export-all"), workspace=workspace_export(client, workspace))


@opts.command("Import what export-all wrote (ours or mlflow-export-import's): experiments and runs, "
              "registered models, prompts, evaluation datasets and webhooks.")
@opts.input_dir
@opts.flag("--delete-model", "If a model exists, first delete it and all its versions.")
@opts.flag("--delete-prompt", "If a prompt exists, first delete it and all its versions.")
@opts.flag("--delete-evaluation-dataset", "Delete each existing evaluation dataset before importing it.")
@workspace_import_flags()
@opts.model_import_options
@opts.workers_and_quiet
@opts.run_command
def import_all(ctx: opts.Context, input_dir: str, delete_model: bool, delete_prompt: bool,
               delete_evaluation_dataset: bool, experiment_rename_file: str | None, model_rename_file: str | None,
               import_source_tags: bool, use_src_user_id: bool, use_threads: bool, verbose: bool,
               webhook_secrets_file: str | None, workspace: WorkspaceImportOptions):
    secrets = webhooks.load_secrets(webhook_secrets_file) if webhook_secrets_file else None  # bad input first
    experiment_renames = opts.rename_file(experiment_rename_file)
    model_renames = opts.rename_file(model_rename_file)
    server_bulk.check_export(input_dir)  # a wrong directory fails before the server is asked anything
    client = ctx.client()
    side = workspace_import(client, workspace)
    return imported(server_bulk.import_all(
        client, input_dir, delete_model=delete_model, delete_prompt=delete_prompt,
        delete_evaluation_dataset=delete_evaluation_dataset, experiment_renames=experiment_renames,
        model_renames=model_renames, import_source_tags=import_source_tags, use_src_user_id=use_src_user_id,
        webhook_secrets=secrets, workers=ctx.workers, progress=ctx.progress("import-all"), workspace=side), side)
