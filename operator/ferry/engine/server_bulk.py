"""A whole tracking server at once: ``export-all`` / ``import-all``, in mlflow-export-import's layout.

The layout is the peer's ``export-all``: a bulk models export of every registered model with all
the runs of their experiments (``models/`` + ``experiments/``), every other experiment added to
the same ``experiments/`` (one merged ``experiments.json``), then ``prompts/``,
``evaluation_datasets/`` and ``manifest.json``. Each experiment carries its own MLflow 3 objects
(`ferry.engine.experiment_objects`). The parts are the existing engines; this module only orders
them and merges their outcomes, so whatever one of them cannot carry is listed with its reason.

An MLflow 2 server answers 404 for the MLflow 3 endpoints: that means "none here", so an
export-all from MLflow 2 succeeds with no prompts, datasets, logged models or traces.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ferry.engine import evaluation_datasets, experiments_bulk, models_bulk, prompts, webhooks
from ferry.engine.experiments_bulk import EXPERIMENTS_JSON
from ferry.engine.files import read_export_file, write_export_file
from ferry.engine.models import DEFAULT_WORKERS
from ferry.engine.workspace_objects import WorkspaceExport, WorkspaceImport, reported
from ferry.errors import InputError
from ferry.options import ExportOptions
from ferry.outcome import Outcome
from ferry.progress import ProgressSink, Tracker
from ferry.tracking import JsonDict, TrackingClient

EXPERIMENTS_DIR = models_bulk.EXPERIMENTS_DIR
MODELS_DIR = models_bulk.MODELS_DIR
PROMPTS_DIR = "prompts"
DATASETS_DIR = "evaluation_datasets"
MANIFEST = "manifest.json"
SCRIPT = "export_all.py"


def _led(verb: str, parts: list[Outcome], path: Path | None = None) -> Outcome:
    total = Outcome.combine(parts, path=str(path) if path else None)
    return total.model_copy(update={"message": f"{verb}: {total.message}"})


# -- export ----------------------------------------------------------------------------------------


def export_all(client: TrackingClient, output_dir: str | Path, options: ExportOptions | None = None, *,
               runs_until: str | int | None = None, workers: int = DEFAULT_WORKERS,
               progress: ProgressSink | None = None, workspace: WorkspaceExport | None = None) -> Outcome:
    """Export every registered model, experiment, prompt, evaluation dataset and webhook of the server.

    `options.run_start_time` and `runs_until` bound the runs of every experiment (the peer's window:
    started at or after the start, before the end); the models' versions follow ``options`` as in
    ``export-models``. Rerun into the same directory, runs already written are not fetched again.
    With `workspace` (a Databricks workspace), the runs' notebooks and the experiments' and models'
    permissions; what it could not carry is in the outcome (`workspace_objects.reported`).
    """
    options = options or ExportOptions()
    out = Path(output_dir)
    tracker = Tracker(progress)
    started = time.monotonic()
    parts = [models_bulk.export_models(client, "all", out, options, export_all_runs=True, runs_until=runs_until,
                                       workers=workers, tracker=tracker, workspace=workspace)]
    by_models = experiments_bulk.read_experiments_index(out / EXPERIMENTS_DIR)
    done_ids = {str(e["id"]) for e in by_models}
    remaining = [str(e["experiment_id"]) for e in client.search_experiments()
                 if str(e["experiment_id"]) not in done_ids]
    rest = experiments_bulk.export_experiments(
        client, remaining, out / EXPERIMENTS_DIR, run_start_time=options.run_start_time, runs_until=runs_until,
        export_deleted_runs=options.export_deleted_runs, workers=workers, tracker=tracker,
        include_logged_models=options.include_logged_models, include_traces=options.include_traces,
        workspace=workspace)
    parts.append(rest.outcome())
    _merge_index(client, out / EXPERIMENTS_DIR, by_models, rest)
    parts.append(prompts.export_prompts(client, "all", out / PROMPTS_DIR, workers=workers))
    parts.append(evaluation_datasets.export_evaluation_datasets(client, out / DATASETS_DIR, workers=workers))
    parts.append(webhooks.export_webhooks(client, out / webhooks.WEBHOOKS_DIR))
    outcome = reported(_led("exported", parts, out), workspace)
    write_export_file(out, MANIFEST, script=SCRIPT, tracking_uri=client.uri, mlflow={}, info={
        "options": {"stages": ",".join(options.stages), "export_latest_versions": options.export_latest_versions,
                    "run_start_time": options.run_start_time, "runs_until": runs_until,
                    "export_deleted_runs": options.export_deleted_runs,
                    "export_version_model": options.export_version_model, "output_dir": str(out),
                    "export_permissions": workspace is not None and workspace.options.export_permissions,
                    "notebook_formats": workspace.notebook_formats if workspace is not None else []},
        "status": {"duration": round(time.monotonic() - started, 1), "phase": outcome.phase.value,
                   "counts": outcome.counts.model_dump(), "failed": outcome.failed}})
    return outcome


def _merge_index(client: TrackingClient, exp_dir: Path, by_models: list[JsonDict],
                 rest: experiments_bulk.BulkExport) -> None:
    """One ``experiments.json`` listing the models' experiments and the others, as the peer merges it."""
    entries = by_models + experiments_bulk.index_entries(rest.experiments)
    ok = sum(int(e.get("ok_runs", 0)) for e in entries)
    bad = sum(int(e.get("failed_runs", 0)) for e in entries)
    write_export_file(exp_dir, EXPERIMENTS_JSON, script="export_experiments.py", tracking_uri=client.uri,
                      mlflow={"experiments": entries},
                      info={"experiment_names": [str(e.get("name")) for e in entries],
                            "status": {"experiments": len(entries), "total_runs": ok + bad, "ok_runs": ok,
                                       "failed_runs": bad},
                            "note": "Merged by export_all from export_models and export_experiments"})


# -- import ----------------------------------------------------------------------------------------


def check_export(input_dir: str | Path) -> Path:
    """`input_dir` if it is an export-all (ours or the peer's); a one-line error otherwise."""
    in_dir = Path(input_dir)
    if not in_dir.is_dir():
        raise InputError(f"input directory {in_dir} does not exist")
    if not (in_dir / MODELS_DIR / models_bulk.MODELS_FILE).is_file():
        raise InputError(f"{in_dir} is not an export-all directory: no {MODELS_DIR}/{models_bulk.MODELS_FILE}")
    if not (in_dir / EXPERIMENTS_DIR / EXPERIMENTS_JSON).is_file():
        raise InputError(f"{in_dir} is not an export-all directory: no {EXPERIMENTS_DIR}/{EXPERIMENTS_JSON}")
    return in_dir


def import_all(client: TrackingClient, input_dir: str | Path, *, delete_model: bool = False,
               delete_prompt: bool = False, delete_evaluation_dataset: bool = False,
               experiment_renames: Mapping[str, str] | None = None, model_renames: Mapping[str, str] | None = None,
               import_source_tags: bool = False, use_src_user_id: bool = False,
               webhook_secrets: webhooks.Secrets | None = None, workers: int = DEFAULT_WORKERS,
               progress: ProgressSink | None = None, workspace: WorkspaceImport | None = None) -> Outcome:
    """Import what `export_all` (or the peer's export-all) wrote: experiments, models, prompts, datasets
    and webhooks (their signing secrets from `webhook_secrets`, which MLflow never exports). With
    `workspace`, notebooks and permissions too; what it could not carry, it holds for the caller.

    Idempotent: a second import finds everything imported before and creates nothing.
    """
    in_dir = check_export(input_dir)
    tracker = Tracker(progress)
    parts = [models_bulk.import_models(client, in_dir, delete_model=delete_model,
                                       experiment_renames=experiment_renames, model_renames=model_renames,
                                       import_source_tags=import_source_tags, use_src_user_id=use_src_user_id,
                                       workers=workers, tracker=tracker, workspace=workspace)]
    if (in_dir / PROMPTS_DIR).is_dir():
        parts.append(prompts.import_prompts(client, in_dir / PROMPTS_DIR, delete_prompt=delete_prompt,
                                            workers=workers))
    if (in_dir / DATASETS_DIR).is_dir():
        names = _experiment_names(in_dir, experiment_renames)
        parts.append(evaluation_datasets.import_evaluation_datasets(
            client, in_dir / DATASETS_DIR, delete_dataset=delete_evaluation_dataset, experiment_names=names))
    if webhooks.holds_webhooks(in_dir):
        parts.append(webhooks.import_webhooks(client, in_dir / webhooks.WEBHOOKS_DIR, secrets=webhook_secrets))
    return _led("imported", parts)


def _experiment_names(in_dir: Path, renames: Mapping[str, str] | None) -> dict[str, str]:
    """Source experiment id → destination name: datasets link to the experiments as they were renamed."""
    index: Any = read_export_file(in_dir / EXPERIMENTS_DIR / EXPERIMENTS_JSON, "an export of experiments")
    return {str(e["id"]): experiments_bulk.rename(str(e["name"]), renames)
            for e in (index.get("mlflow") or {}).get("experiments") or [] if "id" in e and "name" in e}
