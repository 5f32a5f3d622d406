"""``export-logged-model``, ``import-logged-model``, ``export-logged-models``, ``import-logged-models``.

mlflow-export-import's names, flags and layout for MLflow 3 logged models, registered or not.
The tracking server comes from ``MLFLOW_TRACKING_URI``.
"""

from __future__ import annotations

from pathlib import Path

import click

from ferry.cli import registry_options as opts
from ferry.engine import logged_models as one
from ferry.engine import logged_models_bulk as bulk
from ferry.outcome import Counts, Outcome

MLMODEL_FIX_HELP = ("Write the new run and model ids and location into the MLmodel artifact "
                    "(the one file not copied byte for byte).")


@opts.command("Export one logged model (fields, metrics and files) to a directory.")
@click.option("--model-id", required=True, help="Logged Model ID.")
@opts.output_dir
@opts.workers_and_quiet
@opts.run_command
def export_logged_model(ctx: opts.Context, model_id: str, output_dir: str) -> Outcome:
    nbytes = one.export_logged_model(ctx.client(), model_id, Path(output_dir))
    return Outcome.of(Counts(bytes=nbytes), done=1, path=output_dir,
                      message=f"exported logged model {model_id} to {output_dir}")


@opts.command("Import one logged model written by export-logged-model (ours or mlflow-export-import's).")
@opts.input_dir
@click.option("--experiment-name", required=True, help="Destination experiment name (created if missing).")
@opts.flag("--mlmodel-fix", MLMODEL_FIX_HELP, default=True)
@opts.workers_and_quiet
@opts.run_command
def import_logged_model(ctx: opts.Context, input_dir: str, experiment_name: str, mlmodel_fix: bool) -> Outcome:
    client = ctx.client()
    experiment_id = str(client.get_or_create_experiment(experiment_name)["experiment_id"])
    src_id = str(one.read_logged_model(Path(input_dir))["model_id"])
    result = bulk.import_experiment_logged_models(client, Path(input_dir).parent, experiment_id, [src_id],
                                                  mlmodel_fix=mlmodel_fix, dirs={src_id: Path(input_dir)})
    return result.outcome()


@opts.command("Export every logged model of experiments, registered or not.")
@click.option("--experiment-ids", required=True,
              help="List of experiment IDs (comma delimited), or 'all' for every experiment.")
@opts.output_dir
@opts.workers_and_quiet
@opts.run_command
def export_logged_models(ctx: opts.Context, experiment_ids: str, output_dir: str) -> Outcome:
    return bulk.export_logged_models(ctx.client(), experiment_ids, output_dir,
                                     progress=ctx.progress("export-logged-models"))


@opts.command("Import logged models written by export-logged-models into experiments of the same names.")
@opts.input_dir
@opts.workers_and_quiet
@opts.run_command
def import_logged_models(ctx: opts.Context, input_dir: str) -> Outcome:
    return bulk.import_logged_models(ctx.client(), input_dir, progress=ctx.progress("import-logged-models"))
