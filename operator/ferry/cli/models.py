"""``export-model``, ``import-model``, ``export-models``, ``import-models``: mlflow-export-import's flags."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from ferry.cli import registry_options as opts
from ferry.cli.options import (
    imported,
    workspace_export,
    workspace_export_flags,
    workspace_import,
    workspace_import_flags,
)
from ferry.engine import experiments, models_bulk
from ferry.engine import models as engine
from ferry.engine import webhooks as hooks
from ferry.engine.workspace_objects import reported
from ferry.options import ExportOptions, WorkspaceExportOptions, WorkspaceImportOptions
from ferry.outcome import Outcome


@opts.command("Export a registered model, its versions and the versions' runs.")
@opts.model
@opts.output_dir
@click.option("--stages", help="Stages to export (comma separated): Production, Staging, Archived, None. "
              "Default is all. Mutually exclusive with --versions.")
@click.option("--versions", help="Versions to export (comma separated). Mutually exclusive with --stages.")
@opts.flag("--export-latest-versions", "Export the latest version of each stage instead of all versions.")
@opts.flag("--export-version-model", "Also export each version's registered MLflow model files.")
@opts.flag("--export-deleted-runs", "Export versions whose run is deleted.")
@workspace_export_flags()
@opts.workers_and_quiet
@opts.run_command
def export_model(ctx: opts.Context, model: str, output_dir: str, stages: str | None, versions: str | None,
                 export_latest_versions: bool, export_version_model: bool, export_deleted_runs: bool,
                 workspace: WorkspaceExportOptions):
    if opts.split_list(stages) and opts.split_list(versions):
        raise opts.UsageError("--stages and --versions cannot be used together")
    options = ExportOptions(stages=engine.parse_stages(stages), versions=opts.split_list(versions),
                            export_latest_versions=export_latest_versions, export_version_model=export_version_model,
                            export_deleted_runs=export_deleted_runs)
    client = ctx.client()
    side = workspace_export(client, workspace)
    return reported(engine.export_model(client, model, output_dir, options, workers=ctx.workers,
                                        progress=ctx.progress("export-model"), workspace=side), side)


@opts.command("Import a registered model exported by export-model (ours or mlflow-export-import's).")
@opts.input_dir
@click.option("--model", help="Destination registered model name. Default: the exported model's name.")
@click.option("--experiment-name", help="Destination experiment for the versions' runs. "
              "Default: an experiment named as each run's source experiment.")
@opts.flag("--delete-model", "If the model exists, first delete it and all its versions.")
@opts.flag("--import-source-tags", "Record the source versions' fields as 'mlflow_exim.field.*' tags.")
@click.option("--await-creation-for", type=int, default=None,
              help="Seconds to wait for each new version to become READY.")
@opts.flag("--verbose", "Accepted for compatibility.")
@workspace_import_flags(notebook_dir=False)
@opts.workers_and_quiet
@opts.run_command
def import_model(ctx: opts.Context, input_dir: str, model: str | None, experiment_name: str | None,
                 delete_model: bool, import_source_tags: bool, await_creation_for: int | None, verbose: bool,
                 workspace: WorkspaceImportOptions):
    client = ctx.client()
    side = workspace_import(client, workspace)
    return imported(engine.import_model(client, input_dir, model_name=model, experiment_name=experiment_name,
                                        delete_model=delete_model, import_source_tags=import_source_tags,
                                        await_creation_for=await_creation_for, workers=ctx.workers,
                                        progress=ctx.progress("import-model"), workspace=side), side)


@opts.command("Export registered models with the experiments of their versions' runs.")
@click.option("--models", required=True,
              help="Model names (comma separated), 'all', a 'prefix*', or a file ending in '.txt' with one per line.")
@opts.output_dir
@click.option("--stages", help="Stages to export (comma separated). Default is all.")
@opts.flag("--export-latest-versions", "Export the latest version of each stage instead of all versions.")
@opts.flag("--export-all-runs", "Export every run of the versions' experiments, not only the versions' runs.")
@opts.flag("--export-version-model", "Also export each version's registered MLflow model files.")
@opts.flag("--export-deleted-runs", "Export deleted runs.")
@click.option("--run-start-time", help="With --export-all-runs: only export runs started at or after this UTC time "
              "(YYYY-MM-DD[ HH:MM:SS]).")
@click.option("--runs-until", help="With --export-all-runs: only export runs started before this UTC time, "
              "exclusive (YYYY-MM-DD[ HH:MM:SS]).")
@opts.flag("--use-threads", "Accepted for compatibility; see --workers.")
@click.option("--webhooks", help="Also export the registry's webhooks (MLflow 3.3 and later): 'all' or names "
              "(comma separated), written under webhooks/ without their signing secrets. Default: none.")
@workspace_export_flags()
@opts.workers_and_quiet
@opts.run_command
def export_models(ctx: opts.Context, models: str, output_dir: str, stages: str | None, export_latest_versions: bool,
                  export_all_runs: bool, export_version_model: bool, export_deleted_runs: bool,
                  run_start_time: str | None, runs_until: str | None, use_threads: bool, webhooks: str | None,
                  workspace: WorkspaceExportOptions):
    experiments.run_window(run_start_time, runs_until)  # a bad time fails before anything is read
    options = ExportOptions(stages=engine.parse_stages(stages), export_latest_versions=export_latest_versions,
                            export_version_model=export_version_model, export_deleted_runs=export_deleted_runs,
                            run_start_time=run_start_time)
    client = ctx.client()
    side = workspace_export(client, workspace)
    done = models_bulk.export_models(client, opts.names_argument(models), output_dir, options,
                                     export_all_runs=export_all_runs, runs_until=runs_until, workers=ctx.workers,
                                     progress=ctx.progress("export-models"), workspace=side)
    return reported(with_webhooks(done, lambda: hooks.export_webhooks(
        client, Path(output_dir) / hooks.WEBHOOKS_DIR, _webhook_names(webhooks)) if webhooks else None), side)


def _webhook_names(value: str) -> str | list[str]:
    return "all" if value.strip() in ("all", "*") else opts.split_list(value)


def with_webhooks(done: Outcome, webhooks: Callable[[], Outcome | None]) -> Outcome:
    """`done` and the outcome of `webhooks` (None: no webhooks to carry) as one, its message led as `done`'s."""
    part = webhooks()
    if part is None:
        return done
    total = Outcome.combine([done, part], path=done.path)
    verb = done.message.split(":", 1)[0]
    return total.model_copy(update={"message": f"{verb}: {total.message}"})


@opts.command("Import registered models and their experiments written by export-models.")
@opts.input_dir
@opts.flag("--delete-model", "If a model exists, first delete it and all its versions.")
@opts.model_import_options
@workspace_import_flags(notebook_dir=False)
@opts.workers_and_quiet
@opts.run_command
def import_models(ctx: opts.Context, input_dir: str, delete_model: bool, experiment_rename_file: str | None,
                  model_rename_file: str | None, import_source_tags: bool, use_src_user_id: bool,
                  use_threads: bool, verbose: bool, webhook_secrets_file: str | None,
                  workspace: WorkspaceImportOptions):
    secrets = hooks.load_secrets(webhook_secrets_file) if webhook_secrets_file else None  # bad input first
    client = ctx.client()
    side = workspace_import(client, workspace)
    done = models_bulk.import_models(client, input_dir, delete_model=delete_model,
                                     experiment_renames=opts.rename_file(experiment_rename_file),
                                     model_renames=opts.rename_file(model_rename_file),
                                     import_source_tags=import_source_tags, use_src_user_id=use_src_user_id,
                                     workers=ctx.workers, progress=ctx.progress("import-models"), workspace=side)
    webhooks_dir = Path(input_dir) / hooks.WEBHOOKS_DIR
    return imported(with_webhooks(done, lambda: hooks.import_webhooks(client, webhooks_dir, secrets=secrets)
                                  if hooks.holds_webhooks(Path(input_dir)) else None), side)
