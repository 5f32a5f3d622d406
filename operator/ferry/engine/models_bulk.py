"""Many registered models at once: ``export-models`` / ``import-models``, and the models and versions of a Job.

The bulk layout is the peer's: ``experiments/`` (a bulk experiments export holding the versions'
runs), ``models/models.json`` listing the models and ``models/<name>/model.json`` per model. The
runs are stored once, under ``experiments/``; on import the experiments come first, and each
version is then linked to the copy of its run found there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ferry.engine import experiments, experiments_bulk, layout, model_versions, registry_files
from ferry.engine.experiments_bulk import EXPERIMENTS_JSON, rename
from ferry.engine.files import write_export_file
from ferry.engine.models import DEFAULT_WORKERS, export_model, import_model, select_versions
from ferry.engine.workspace_objects import WorkspaceExport, WorkspaceImport
from ferry.errors import FerryError
from ferry.options import ExportOptions, ImportOptions, ImportTarget, Renames, Selection
from ferry.outcome import Counts, Outcome
from ferry.progress import ProgressSink, Tracker
from ferry.tracking.client import TrackingClient
from ferry.tracking.prompts import IS_PROMPT_TAG, is_prompt
from ferry.tracking.registry import Registry

EXPERIMENTS_DIR = layout.MODELS_EXPERIMENTS_DIR
MODELS_DIR = layout.MODELS_DIR
VERSIONS_DIR = layout.VERSIONS_DIR
MODELS_FILE = "models.json"


def resolve_models(registry: Registry, names: str | Sequence[str]) -> list[str]:
    """``all``, ``prefix*`` or explicit names (the peer's --models), without the prompts among them."""
    return choose_models(registry, names)[0]


def choose_models(registry: Registry, names: str | Sequence[str]) -> tuple[list[str], list[str]]:
    """(models, prompts) of ``all``, ``prefix*`` or explicit names.

    MLflow 3 stores a prompt as a registered model tagged ``mlflow.prompt.is_prompt``; exported as
    a model it would lose its templates' meaning, so prompts are never models here. ``all`` and
    ``prefix*`` leave them out (export-prompts and export-all carry them); a prompt named
    explicitly is returned apart, for the caller to list as skipped.
    """
    if isinstance(names, str):
        names = [names]
    if list(names) in (["all"], ["*"]) or (len(names) == 1 and names[0].endswith("*")):
        prefix = "" if names[0] in ("all", "*") else names[0][:-1]
        return [str(m["name"]) for m in registry.client.search_registered_models()
                if not is_prompt(m) and str(m["name"]).startswith(prefix)], []
    models, prompts = [], []
    for name in names:
        found = registry.find_model(name)
        (prompts if found is not None and is_prompt(found) else models).append(name)
    return models, prompts


def prompt_skipped(name: str, hint: str = "export it with export-prompts") -> str:
    """The failure line of a prompt named where models are selected."""
    return f"model '{name}': not carried: it is a prompt ({IS_PROMPT_TAG}), not a registered model; {hint}"


class _Totals:
    """The outcomes of several engine calls, and what failed outside them, as one `Outcome`."""

    def __init__(self) -> None:
        self.parts: list[Outcome] = []

    def add(self, outcome: Outcome) -> None:
        self.parts.append(outcome)

    def fail(self, what: str, err: FerryError) -> None:
        self.parts.append(Outcome.of(Counts(), [f"{what}: {err.message}"]))

    def outcome(self, verb: str, path: Path | None = None) -> Outcome:
        """`Outcome.combine` of the parts, its message led by `verb` ("exported: 1 experiments, ...")."""
        total = Outcome.combine(self.parts, path=str(path) if path else None)
        return total.model_copy(update={"message": f"{verb}: {total.message}"})


# -- export ----------------------------------------------------------------------------------------


def export_models(client: TrackingClient, names: str | Sequence[str], output_dir: str | Path,
                  options: ExportOptions | None = None, *, export_all_runs: bool = False,
                  runs_until: str | int | None = None, workers: int = DEFAULT_WORKERS,
                  progress: ProgressSink | None = None, tracker: Tracker | None = None,
                  workspace: WorkspaceExport | None = None) -> Outcome:
    """Export models and their versions' runs (grouped by experiment) in the peer's bulk layout.

    `runs_until` (exclusive) and ``options.run_start_time`` bound the runs only with `export_all_runs`,
    where the experiments' runs are searched; the versions' own runs are always exported.
    """
    options = options or ExportOptions()
    out = Path(output_dir)
    registry = Registry(client)
    tracker = tracker or Tracker(progress)
    totals = _Totals()
    models, prompts = choose_models(registry, names)
    for name in prompts:
        totals.parts.append(Outcome.of(Counts(), [prompt_skipped(name)]))
    runs_by_experiment: dict[str, list[str]] = {}
    for name in models:
        try:
            for version in select_versions(registry, name, options):
                run = client.get_run(version["run_id"])
                runs_by_experiment.setdefault(run["info"]["experiment_id"], []).append(version["run_id"])
        except FerryError as err:
            totals.fail(f"model {name}", err)

    exported = []
    for exp_id, run_ids in runs_by_experiment.items():
        try:
            done = experiments.export_experiment(
                client, exp_id, out / EXPERIMENTS_DIR / exp_id, run_ids=None if export_all_runs else run_ids,
                run_start_time=options.run_start_time, runs_until=runs_until,
                export_deleted_runs=options.export_deleted_runs,
                workers=workers, tracker=tracker, workspace=workspace)
        except FerryError as err:
            totals.fail(f"experiment {exp_id}", err)
            continue
        exported.append(done)
        totals.add(done.outcome())
    write_export_file(out / EXPERIMENTS_DIR, EXPERIMENTS_JSON, script="export_experiments.py",
                      tracking_uri=client.uri, mlflow={"experiments": experiments_bulk.index_entries(exported)},
                      info={"experiment_names": [e.name for e in exported]})

    ok_models = []
    for name in models:
        try:
            totals.add(export_model(client, name, out / MODELS_DIR / name, options, include_runs=False,
                                    workers=workers, tracker=tracker, workspace=workspace))
            ok_models.append(name)
        except FerryError as err:
            totals.fail(f"model {name}", err)
    write_export_file(out / MODELS_DIR, MODELS_FILE, script="export_models.py", tracking_uri=client.uri,
                      mlflow={"models": ok_models},
                      info={"model_names": models, "stages": ",".join(options.stages),
                            "num_total_models": len(models), "num_ok_models": len(ok_models),
                            "num_failed_models": len(models) - len(ok_models),
                            "failed_models": [m for m in models if m not in ok_models]})
    write_export_file(out, "manifest.json", script="export_models.py", tracking_uri=client.uri, mlflow={},
                      info={"model_names": models, "export_all_runs": export_all_runs,
                            "export_latest_versions": options.export_latest_versions, "output_dir": str(out)})
    return totals.outcome("exported", out)


# -- import ----------------------------------------------------------------------------------------


def import_models(client: TrackingClient, input_dir: str | Path, *, delete_model: bool = False,
                  experiment_renames: Mapping[str, str] | None = None,
                  model_renames: Mapping[str, str] | None = None, import_source_tags: bool = False,
                  use_src_user_id: bool = False, workers: int = DEFAULT_WORKERS,
                  progress: ProgressSink | None = None, tracker: Tracker | None = None,
                  workspace: WorkspaceImport | None = None) -> Outcome:
    """Import a bulk models export: its experiments first, then each model on the imported runs.

    An entry of `input_dir` no importer reads is listed as not carried (`ferry.engine.layout`).
    """
    src_dir = Path(input_dir)
    model_names = _model_names(src_dir / MODELS_DIR)
    tracker = tracker or Tracker(progress)
    totals = _Totals()
    run_map: dict[str, str] = {}
    if (src_dir / EXPERIMENTS_DIR / EXPERIMENTS_JSON).is_file():
        bulk = experiments_bulk.import_experiments(
            client, src_dir / EXPERIMENTS_DIR, renames=experiment_renames, import_source_tags=import_source_tags,
            use_src_user_id=use_src_user_id, workers=workers, tracker=tracker, workspace=workspace)
        totals.add(bulk.outcome())
        run_map.update({r.src_run_id: r.dst_run_id for imported in bulk.experiments for r in imported.runs})
    for name in model_names:
        try:
            totals.add(import_model(client, src_dir / MODELS_DIR / name, model_name=rename(name, model_renames),
                                    delete_model=delete_model, import_source_tags=import_source_tags,
                                    workers=workers, run_map=run_map, tracker=tracker, workspace=workspace))
        except FerryError as err:
            totals.fail(f"model {name}", err)
    return layout.with_not_carried(totals.outcome("imported"), layout.not_carried(src_dir))


def _model_names(models_dir: Path) -> list[str]:
    doc = registry_files.read(models_dir / MODELS_FILE, "a bulk models export")
    names = (doc.get("mlflow") or {}).get("models")
    if not isinstance(names, list):
        return sorted(p.parent.name for p in models_dir.glob(f"*/{model_versions.MODEL_FILE}"))
    return [str(n) for n in names]


# -- the registry part of ferry.engine.service's export and import --------------------------------


def export_selection(client: TrackingClient, out_dir: Path, selection: Selection, options: ExportOptions, *,
                     workers: int, tracker: Tracker, workspace: WorkspaceExport | None = None) -> Outcome:
    """Models under ``models/<name>/`` (self-contained, with their runs) and versions under
    ``model_versions/<name>/<version>/``."""
    totals = _Totals()
    names, prompts = choose_models(Registry(client), selection.models) if selection.models else ([], [])
    for name in prompts:
        totals.parts.append(Outcome.of(Counts(), [prompt_skipped(name, "select it in spec.objects.prompts")]))
    for name in names:
        try:
            totals.add(export_model(client, name, out_dir / MODELS_DIR / name, options, workers=workers,
                                    tracker=tracker, workspace=workspace))
        except FerryError as err:
            totals.fail(f"model {name}", err)
    if names:
        write_export_file(out_dir / MODELS_DIR, MODELS_FILE, script="export_models.py", tracking_uri=client.uri,
                          mlflow={"models": names})
    for ref in selection.model_versions:
        tracker.add_total()
        try:
            totals.add(model_versions.export_model_version(
                client, ref.model, ref.version, out_dir / VERSIONS_DIR / ref.model / ref.version,
                export_version_model=options.export_version_model))
            tracker.advance()
        except FerryError as err:
            totals.fail(f"version {ref.version} of model {ref.model}", err)
            tracker.fail()
    return totals.outcome("exported", out_dir)


def holds_models(in_dir: Path) -> bool:
    return any(_version_dirs(in_dir)) or (in_dir / model_versions.MODEL_FILE).is_file() or \
        (in_dir / MODELS_DIR / MODELS_FILE).is_file()


def _version_dirs(in_dir: Path) -> Iterable[Path]:
    if (in_dir / model_versions.VERSION_FILE).is_file():
        yield in_dir
    yield from sorted(p.parent for p in in_dir.glob(f"{VERSIONS_DIR}/*/*/{model_versions.VERSION_FILE}"))


def _model_dirs(in_dir: Path) -> list[Path]:
    """`in_dir` itself when it is a model directory, else the models of a ``models/`` index."""
    if (in_dir / model_versions.MODEL_FILE).is_file() and not (in_dir / model_versions.VERSION_FILE).is_file():
        return [in_dir]
    if (in_dir / MODELS_DIR / MODELS_FILE).is_file():
        return [in_dir / MODELS_DIR / name for name in _model_names(in_dir / MODELS_DIR)]
    return []


def import_directory(client: TrackingClient, in_dir: Path, options: ImportOptions,
                     target: ImportTarget | None = None, *, workers: int = DEFAULT_WORKERS,
                     tracker: Tracker, workspace: WorkspaceImport | None = None) -> Outcome:
    """Import every model and version `in_dir` holds, in whichever layout, named as `target` says."""
    target = target or ImportTarget()
    renames = target.renames or Renames()
    experiment_renames, model_renames = renames.experiments, renames.models
    totals = _Totals()
    common: dict[str, Any] = {"import_source_tags": options.import_source_tags,
                              "await_creation_for": options.await_creation_for}
    if (in_dir / MODELS_DIR / MODELS_FILE).is_file() and (in_dir / EXPERIMENTS_DIR).is_dir():
        totals.add(import_models(client, in_dir, delete_model=options.delete_model,
                                 experiment_renames=experiment_renames, model_renames=model_renames,
                                 import_source_tags=options.import_source_tags,
                                 use_src_user_id=options.use_src_user_id, workers=workers, tracker=tracker,
                                 workspace=workspace))
    else:
        model_dirs = _model_dirs(in_dir)
        for model_dir in model_dirs:
            try:
                src_name = model_dir.name if model_dir != in_dir else None
                name = target.model_name or (rename(src_name, model_renames) if src_name else None)
                totals.add(import_model(client, model_dir, model_name=name, experiment_name=target.experiment_name,
                                        delete_model=options.delete_model, workers=workers, tracker=tracker,
                                        workspace=workspace, **common))
            except FerryError as err:
                totals.fail(f"model in {model_dir}", err)
    for version_dir in _version_dirs(in_dir):
        tracker.add_total()
        try:
            src = registry_files.section(registry_files.read(version_dir / model_versions.MODEL_FILE),
                                         "registered_model", version_dir / model_versions.MODEL_FILE)
            experiment = registry_files.section(registry_files.read(version_dir / model_versions.EXPERIMENT_FILE),
                                                "experiment", version_dir / model_versions.EXPERIMENT_FILE)
            totals.add(model_versions.import_model_version(
                client, version_dir, model_name=target.model_name or rename(src["name"], model_renames),
                experiment_name=target.experiment_name or rename(experiment["name"], experiment_renames),
                create_model=options.create_model, import_stages_and_aliases=options.import_stages_and_aliases,
                import_metadata=options.import_metadata, **common))
            tracker.advance()
        except FerryError as err:
            totals.fail(f"model version in {version_dir}", err)
            tracker.fail()
    return totals.outcome("imported")
