"""``export-evaluation-dataset(s)``, ``import-evaluation-dataset(s)``: mlflow-export-import's flags."""

from __future__ import annotations

import click

from ferry.cli import registry_options as opts
from ferry.engine import evaluation_datasets as engine


@opts.command("Export an MLflow 3 evaluation dataset with its records and experiment links.")
@click.option("--dataset-name", help="Name of the evaluation dataset to export.")
@click.option("--dataset-id", help="ID of the evaluation dataset to export.")
@opts.output_dir
@opts.workers_and_quiet
@opts.run_command
def export_evaluation_dataset(ctx: opts.Context, dataset_name: str | None, dataset_id: str | None, output_dir: str):
    return engine.export_evaluation_dataset(ctx.client(), output_dir, dataset_name=dataset_name,
                                            dataset_id=dataset_id)


@opts.command("Import an evaluation dataset exported by export-evaluation-dataset (ours or mlflow-export-import's).")
@opts.input_dir
@click.option("--evaluation-dataset-name", help="New name for the imported evaluation dataset. "
              "Default: the exported dataset's name.")
@opts.flag("--delete-evaluation-dataset", "Delete the existing evaluation dataset before importing.")
@opts.workers_and_quiet
@opts.run_command
def import_evaluation_dataset(ctx: opts.Context, input_dir: str, evaluation_dataset_name: str | None,
                              delete_evaluation_dataset: bool):
    return engine.import_evaluation_dataset(ctx.client(), input_dir, dataset_name=evaluation_dataset_name,
                                            delete_dataset=delete_evaluation_dataset)


@opts.command("Export evaluation datasets, each into <output-dir>/<name>_<dataset_id>/.")
@opts.output_dir
@click.option("--evaluation-datasets", required=True,
              help="Dataset names (comma separated), 'all', or a file ending in '.txt' with one per line.")
@click.option("--experiment-ids", help="Experiment IDs (comma separated) whose datasets to export. "
              "Only with --evaluation-datasets all.")
@opts.flag("--use-threads", "Accepted for compatibility; see --workers.")
@opts.workers_and_quiet
@opts.run_command
def export_evaluation_datasets(ctx: opts.Context, output_dir: str, evaluation_datasets: str,
                               experiment_ids: str | None, use_threads: bool):
    names = engine.ALL if evaluation_datasets.lower() == engine.ALL else opts.names_argument(evaluation_datasets)
    if isinstance(names, str) and names != engine.ALL:
        raise opts.UsageError("--evaluation-datasets takes 'all', names or a .txt file, not a 'prefix*'")
    if opts.split_list(experiment_ids) and names != engine.ALL:
        raise opts.UsageError("--experiment-ids can be used only with --evaluation-datasets all")
    return engine.export_evaluation_datasets(ctx.client(), output_dir, names,
                                             experiment_ids=opts.split_list(experiment_ids), workers=ctx.workers)


@opts.command("Import the evaluation datasets written by export-evaluation-datasets.")
@opts.input_dir
@opts.flag("--delete-evaluation-dataset", "Delete each existing evaluation dataset before importing.")
@opts.flag("--use-threads", "Accepted for compatibility; see --workers.")
@opts.workers_and_quiet
@opts.run_command
def import_evaluation_datasets(ctx: opts.Context, input_dir: str, delete_evaluation_dataset: bool,
                               use_threads: bool):
    return engine.import_evaluation_datasets(ctx.client(), input_dir, delete_dataset=delete_evaluation_dataset)
