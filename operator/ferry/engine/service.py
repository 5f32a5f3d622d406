"""The engine's top-level API: export a selection, import a directory. Jobs call these two.

Both return an `Outcome` (counts, failures, phase) and never raise for one failed object:
failures are listed and the phase is PartiallyFailed. They raise `FerryError` only when nothing
can be done at all (unreachable server, not an export directory). They take the resources'
own option models (`ferry.options`), so a validated spec goes to the engine unchanged.
"""

from __future__ import annotations

from pathlib import Path

from ferry.engine import (
    evaluation_datasets,
    experiments,
    experiments_bulk,
    models_bulk,
    prompts,
    selected_objects,
    webhooks,
)
from ferry.engine import runs as run_engine
from ferry.engine.files import read_export_file
from ferry.engine.layout import (
    DATASETS_DIR,
    LOGGED_MODELS_DIR,
    PROMPTS_DIR,
    RUNS_DIR,
    TRACES_DIR,
    not_carried,
    with_not_carried,
)
from ferry.engine.logged_models_bulk import INDEX_FILE as LOGGED_MODELS_INDEX
from ferry.engine.traces import TRACES_FILE
from ferry.engine.workspace_objects import WorkspaceExport, WorkspaceImport, reported
from ferry.errors import FerryError, InputError
from ferry.options import (
    ALL,
    ExportOptions,
    ImportOptions,
    ImportTarget,
    Renames,
    Selection,
    WorkspaceExportOptions,
    WorkspaceImportOptions,
)
from ferry.outcome import Counts, Outcome, Phase
from ferry.progress import ProgressSink, Tracker
from ferry.tracking import TrackingClient


def export_objects(uri: str, out_dir: Path, selection: Selection, options: ExportOptions, *, workers: int = 4,
                   on_progress: ProgressSink | None = None) -> Outcome:
    """Export `selection` from the server at `uri` into `out_dir` (resumable: rerun into the same dir).

    Layout: experiments in the peer's bulk layout (``experiments.json`` + ``<experiment_id>/``),
    single runs under ``runs/<run_id>/``, models and versions as their engine writes them, logged
    models and traces selected by id under ``logged_models/`` and ``traces/`` (the peer's
    export-logged-models and export-traces layouts).
    """
    client = TrackingClient(uri)
    tracker = Tracker(on_progress)
    workspace = workspace_export(client, options)
    parts: list[Outcome] = []
    if selection.experiments:
        spec = ["all"] if any(e in ALL for e in selection.experiments) else selection.experiments
        parts.append(experiments_bulk.export_experiments(
            client, spec, out_dir, run_start_time=options.run_start_time,
            export_deleted_runs=options.export_deleted_runs, include_artifacts=options.include_artifacts,
            workers=workers, tracker=tracker, options=options.model_dump(),
            include_logged_models=options.include_logged_models, include_traces=options.include_traces,
            traces_since=experiments.parse_run_start_time(options.traces_since, "spec.options.tracesSince"),
            workspace=workspace).outcome())
    run_ids = with_descendants(client, selection.run_ids) if options.check_nested_runs else selection.run_ids
    for run_id in run_ids:
        tracker.add_total()
        try:
            done = run_engine.export_run(client, run_id, out_dir / RUNS_DIR / run_id,
                                         include_artifacts=options.include_artifacts, workspace=workspace)
            parts.append(Outcome.of(Counts(runs=1, bytes=done.nbytes)))
            tracker.advance()
        except FerryError as err:
            parts.append(Outcome.of(Counts(), [f"run {run_id}: {err.message}"]))
            tracker.fail()
    if selection.models or selection.model_versions:
        parts.append(models_bulk.export_selection(client, out_dir, selection, options, workers=workers,
                                                  tracker=tracker, workspace=workspace))
    if selection.prompts:
        parts.append(prompts.export_prompts(client, _names(selection.prompts), out_dir / PROMPTS_DIR,
                                            workers=workers))
    if selection.evaluation_datasets:
        parts.append(evaluation_datasets.export_evaluation_datasets(
            client, out_dir / DATASETS_DIR, _names(selection.evaluation_datasets), workers=workers))
    if selection.logged_models:
        parts.append(selected_objects.export_logged_models(client, _names(selection.logged_models),
                                                           out_dir / LOGGED_MODELS_DIR, tracker=tracker))
    if selection.traces:
        parts.append(selected_objects.export_traces(client, _names(selection.traces), out_dir / TRACES_DIR,
                                                    tracker=tracker))
    if selection.webhooks:
        parts.append(webhooks.export_webhooks(client, out_dir / webhooks.WEBHOOKS_DIR, _names(selection.webhooks)))
    return cut_short(reported(Outcome.combine(parts, path=str(out_dir)), workspace), client)


def workspace_export(client: TrackingClient, options: ExportOptions) -> WorkspaceExport | None:
    """The workspace part of a resource's export: validation refuses its options on any other server."""
    wanted = WorkspaceExportOptions.model_validate(options.model_dump(include=set(WorkspaceExportOptions.model_fields)))
    return WorkspaceExport(client.workspace, wanted) if client.workspace is not None and wanted.wanted else None


def workspace_import(client: TrackingClient, options: ImportOptions) -> WorkspaceImport | None:
    wanted = WorkspaceImportOptions.model_validate(options.model_dump(include=set(WorkspaceImportOptions.model_fields)))
    return WorkspaceImport(client.workspace, wanted) if client.workspace is not None and wanted.wanted else None


def cut_short(outcome: Outcome, client: TrackingClient) -> Outcome:
    """Failed, not PartiallyFailed, when the server could not be reached during the work.

    PartiallyFailed says a rerun would not change what is listed, so a Job does not retry it.
    Objects that failed because the server went away are carried by a rerun (an export resumes
    from its completion markers, an import is idempotent), so the work is Failed and the Job's
    backoffLimit brings it to its end.
    """
    if outcome.phase is not Phase.PARTIALLY_FAILED or not client.transport.unreachable:
        return outcome
    message = f"{outcome.message}; MLflow at {client.uri} could not be reached: a rerun carries the rest"
    return outcome.model_copy(update={"phase": Phase.FAILED, "message": message})


def _names(names: list[str]) -> str | list[str]:
    """``"all"`` for a selection of everything ('*' or 'all'), else the names."""
    return "all" if any(n in ALL for n in names) else names


def with_descendants(client: TrackingClient, run_ids: list[str]) -> list[str]:
    """`run_ids` and every run nested under them (``checkNestedRuns``), each once, parents first.

    A run that cannot be read is kept as it is: its export reports why.
    """
    found = dict.fromkeys(run_ids)
    for run_id in run_ids:
        try:
            experiment_id = client.get_run(run_id)["info"]["experiment_id"]
        except FerryError:
            continue
        for child in experiments.descendants(client, str(experiment_id), run_id):
            found.setdefault(child["info"]["run_id"])
    return list(found)


def import_objects(uri: str, in_dir: Path, options: ImportOptions, target: ImportTarget | None = None, *,
                   workers: int = 4, on_progress: ProgressSink | None = None,
                   webhook_secrets: Path | None = None) -> Outcome:
    """Import whatever `in_dir` holds (experiments with their logged models and traces, runs, logged
    models and traces selected by id, models, prompts, evaluation datasets, webhooks) into `uri`.

    `target` names the destination objects; unset, they keep their source names. `webhook_secrets`
    is a file or directory of the webhooks' signing secrets (`ferry.engine.webhooks.load_secrets`).

    An entry no importer reads (an object kind this version does not know) is listed as not
    carried, and the outcome is at best PartiallyFailed (`ferry.engine.layout`).
    """
    if not in_dir.is_dir():
        raise InputError(f"input directory {in_dir} does not exist")
    secrets = webhooks.load_secrets(webhook_secrets) if webhook_secrets else None  # bad input fails first
    target = target or ImportTarget()
    renames = target.renames or Renames()
    client = TrackingClient(uri)
    tracker = Tracker(on_progress)
    workspace = workspace_import(client, options)
    parts: list[Outcome] = []
    found = False
    one_experiment = (in_dir / experiments.EXPERIMENT_JSON).is_file()
    if (in_dir / experiments_bulk.EXPERIMENTS_JSON).is_file():
        found = True
        parts.append(experiments_bulk.import_experiments(
            client, in_dir, renames=renames.experiments, import_source_tags=options.import_source_tags,
            use_src_user_id=options.use_src_user_id, mlmodel_fix=options.mlmodel_fix, workers=workers,
            tracker=tracker, workspace=workspace).outcome())
    elif one_experiment:
        found = True
        parts.append(experiments.import_experiment(
            client, in_dir, target.experiment_name, import_source_tags=options.import_source_tags,
            use_src_user_id=options.use_src_user_id, mlmodel_fix=options.mlmodel_fix, workers=workers,
            tracker=tracker, workspace=workspace).outcome())
    run_dirs = [] if one_experiment else _run_dirs(in_dir)
    if run_dirs and not target.experiment_name:
        missing = f"{in_dir} holds single runs: an experiment name to import them into is required"
        if not found:
            raise InputError(missing)
        parts.append(Outcome.of(Counts(), [f"runs: {missing}"]))
    elif run_dirs:
        found = True
        parts.append(_import_runs(client, run_dirs, target.experiment_name or "", options, tracker))
    if (in_dir / LOGGED_MODELS_DIR / LOGGED_MODELS_INDEX).is_file() and not one_experiment:
        found = True
        parts.append(selected_objects.import_logged_models(client, in_dir / LOGGED_MODELS_DIR,
                                                           renames=renames.experiments,
                                                           mlmodel_fix=options.mlmodel_fix, tracker=tracker))
    if (in_dir / TRACES_DIR / TRACES_FILE).is_file() and not one_experiment:
        found = True
        parts.append(selected_objects.import_traces(client, in_dir / TRACES_DIR, renames=renames.experiments))
    if models_bulk.holds_models(in_dir):
        found = True
        parts.append(models_bulk.import_directory(client, in_dir, options, target, workers=workers,
                                                  tracker=tracker, workspace=workspace))
    if (in_dir / PROMPTS_DIR).is_dir():
        found = True
        parts.append(prompts.import_prompts(client, in_dir / PROMPTS_DIR, workers=workers))
    if (in_dir / DATASETS_DIR).is_dir():
        found = True
        parts.append(evaluation_datasets.import_evaluation_datasets(client, in_dir / DATASETS_DIR,
                                                                    experiment_names=_experiment_names(in_dir)))
    if webhooks.holds_webhooks(in_dir):
        found = True
        parts.append(webhooks.import_webhooks(client, in_dir / webhooks.WEBHOOKS_DIR, secrets=secrets))
    if not found:
        raise InputError(f"{in_dir} is not an export: no experiments.json, experiment.json, run.json or model files")
    outcome = with_not_carried(Outcome.combine(parts, path=str(in_dir)), not_carried(in_dir))
    return cut_short(reported(outcome, workspace), client)


def _import_runs(client: TrackingClient, run_dirs: list[Path], experiment_name: str, options: ImportOptions,
                 tracker: Tracker) -> Outcome:
    """Single runs into one experiment; their parent links are remapped among them."""
    exp = client.get_or_create_experiment(experiment_name)
    imported = []
    failed = []
    known = run_engine.imported_index(client, str(exp["experiment_id"]))
    for run_dir in run_dirs:
        tracker.add_total()
        try:
            imported.append(run_engine.import_run(
                client, run_dir, str(exp["experiment_id"]), import_source_tags=options.import_source_tags,
                use_src_user_id=options.use_src_user_id, mlmodel_fix=options.mlmodel_fix, defer_delete=True,
                known=known))
            tracker.advance()
        except FerryError as err:
            failed.append(f"run {run_dir.name}: {err.message}")
            tracker.fail()
    experiments.finish_links(client, imported)
    return Outcome.of(Counts(runs=len(imported)), failed)


def _experiment_names(in_dir: Path) -> dict[str, str] | None:
    """Source experiment id → name, from the export's experiments.json (datasets link to experiments)."""
    if not (in_dir / experiments_bulk.EXPERIMENTS_JSON).is_file():
        return None
    index = read_export_file(in_dir / experiments_bulk.EXPERIMENTS_JSON, "an export of experiments")
    return {str(e["id"]): str(e["name"]) for e in (index.get("mlflow") or {}).get("experiments") or []
            if "id" in e and "name" in e}


def _run_dirs(in_dir: Path) -> list[Path]:
    """`in_dir` itself when it is a run, else the runs under ``runs/``."""
    if (in_dir / run_engine.RUN_JSON).is_file():
        return [in_dir]
    return sorted(p for p in (in_dir / RUNS_DIR).glob("*") if (p / run_engine.RUN_JSON).is_file())
