"""``export-model-version``, ``import-model-version`` and ``copy-model-version``: mlflow-export-import's flags."""

from __future__ import annotations

import click

from ferry.cli import registry_options as opts
from ferry.engine import model_versions as engine


@opts.command("Export a registered model version with its run, its model and its run's experiment.")
@opts.model
@click.option("--version", required=True, help="Registered model version.")
@opts.output_dir
@click.option("--export-version-model", "--vrm-export-version-model", "export_version_model", type=bool,
              default=False, show_default=True, help="Also export the version's registered MLflow model files.")
@click.option("--vrm-model-artifact-path", help="Accepted for compatibility.")
@opts.flag("--skip-download-run-artifacts", "Accepted for compatibility.")
@opts.databricks_only("export_permissions", "notebook_formats")
@opts.workers_and_quiet
@opts.run_command
def export_model_version(ctx: opts.Context, model: str, version: str, output_dir: str, export_version_model: bool,
                         vrm_model_artifact_path: str | None, skip_download_run_artifacts: bool):
    return engine.export_model_version(ctx.client(), model, version, output_dir,
                                       export_version_model=export_version_model)


@opts.command("Import a version exported by export-model-version as a new version of a model.")
@opts.model
@click.option("--experiment-name", required=True, help="Destination experiment for the version's run.")
@opts.input_dir
@opts.flag("--create-model", "Create the registered model if it does not exist.")
@opts.flag("--import-source-tags", "Record the source version's fields as 'mlflow_exim.field.*' tags.")
@opts.flag("--import-stages-and-aliases", "Import the version's stage and aliases.")
@opts.flag("--import-metadata", "Import the model's and the experiment's description and tags.")
@opts.databricks_only("import_permissions")
@opts.workers_and_quiet
@opts.run_command
def import_model_version(ctx: opts.Context, model: str, experiment_name: str, input_dir: str, create_model: bool,
                         import_source_tags: bool, import_stages_and_aliases: bool, import_metadata: bool):
    return engine.import_model_version(ctx.client(), input_dir, model_name=model, experiment_name=experiment_name,
                                       create_model=create_model, import_source_tags=import_source_tags,
                                       import_stages_and_aliases=import_stages_and_aliases,
                                       import_metadata=import_metadata)


@opts.command("Copy a registered model version (and its run) to another model, on this or another server.")
@click.option("--src-model", required=True, help="Source registered model.")
@click.option("--src-version", required=True, help="Source model version.")
@click.option("--dst-model", required=True, help="Destination registered model.")
@click.option("--dst-experiment-name", help="Destination experiment for a copy of the version's run. "
              "Default: on the same server the source run is shared; on another, its experiment's name.")
@click.option("--src-mlflow-uri", "--src-registry-uri", "src_mlflow_uri",
              help="Source tracking server. Default: MLFLOW_TRACKING_URI.")
@click.option("--dst-mlflow-uri", "--dst-registry-uri", "dst_mlflow_uri",
              help="Destination tracking server. Default: MLFLOW_TRACKING_URI.")
@opts.flag("--copy-stages-and-aliases", "Copy the version's stage and aliases.")
@opts.flag("--copy-lineage-tags", "Record the source version's fields as 'mlflow_exim.*' tags.")
@opts.flag("--verbose", "Accepted for compatibility.")
@opts.databricks_only("copy_permissions")
@opts.workers_and_quiet
@opts.run_command
def copy_model_version(ctx: opts.Context, src_model: str, src_version: str, dst_model: str,
                       dst_experiment_name: str | None, src_mlflow_uri: str | None, dst_mlflow_uri: str | None,
                       copy_stages_and_aliases: bool, copy_lineage_tags: bool, verbose: bool):
    return engine.copy_model_version(ctx.client(src_mlflow_uri), ctx.client(dst_mlflow_uri), src_model, src_version,
                                     dst_model, dst_experiment_name=dst_experiment_name,
                                     copy_stages_and_aliases=copy_stages_and_aliases,
                                     copy_lineage_tags=copy_lineage_tags)
