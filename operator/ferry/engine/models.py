"""Export and import of a registered model with its versions, in mlflow-export-import's model layout.

A model directory is ``model.json`` plus one directory per version's run (named by the source run
id). Runs are exported and imported concurrently; versions are then created one after another in
numeric order (1, 2, ..., 10, 11), which is the only way to give them the same numbers as in the
source. The peer sorts versions as strings and so registers 10 before 2.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ferry.engine import logged_models, registry_files, registry_runs
from ferry.engine.model_versions import (
    VersionOrigin,
    apply_aliases,
    apply_stage,
    create_version,
    imported_versions,
)
from ferry.engine.registry_format import (
    STAGES,
    JsonDict,
    add_run_facts,
    aliases_by_version,
    model_id_of,
    model_to_file,
    tags_dict,
    version_number,
    version_to_file,
)
from ferry.engine.workspace_objects import PERMISSIONS, WorkspaceExport, WorkspaceImport
from ferry.errors import FerryError, InputError, NotFoundError, UsageError
from ferry.options import ExportOptions
from ferry.outcome import Counts, Outcome
from ferry.progress import ProgressSink, Tracker
from ferry.tracking.client import TrackingClient
from ferry.tracking.prompts import IS_PROMPT_TAG, is_prompt
from ferry.tracking.registry import Registry

MODEL_FILE = "model.json"
VERSION_MODELS_DIR = "version_models"
DEFAULT_WORKERS = 4


def parse_stages(stages: str | Iterable[str] | None) -> list[str]:
    """Canonical stage names from a comma list, case-insensitively; unknown ones are a usage error."""
    items = stages.split(",") if isinstance(stages, str) else list(stages or [])
    canonical = {s.lower(): s for s in STAGES}
    found = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        if item.lower() not in canonical:
            raise UsageError(f"unknown stage '{item}': use one of {', '.join(STAGES)}")
        found.append(canonical[item.lower()])
    return found


def select_versions(registry: Registry, name: str, options: ExportOptions) -> list[JsonDict]:
    """The versions of `name` that `options` (stages, versions, export_latest_versions) select."""
    stages = parse_stages(options.stages)
    wanted = [str(v).strip() for v in options.versions if str(v).strip()]
    if stages and wanted:
        raise UsageError("--stages and --versions cannot be used together")
    versions = registry.latest_versions(name) if options.export_latest_versions else registry.versions(name)
    if wanted:
        present = {str(v["version"]) for v in versions}
        missing = [v for v in wanted if v not in present]
        if missing:
            raise NotFoundError(f"version {', '.join(missing)} of registered model '{name}' not found "
                                f"in MLflow at {registry.uri}")
        return [v for v in versions if str(v["version"]) in wanted]
    if stages:
        return [v for v in versions if v.get("current_stage", "None") in stages]
    return versions


def _parallel(fn: Callable[[str], object], items: Iterable[str], workers: int) -> dict[str, object]:
    """`fn` over `items` with bounded concurrency; each result or the `FerryError` it raised."""
    def guarded(item: str) -> object:
        try:
            return fn(item)
        except FerryError as err:
            return err

    unique = list(dict.fromkeys(items))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return dict(zip(unique, pool.map(guarded, unique), strict=True))


# -- export ----------------------------------------------------------------------------------------


def export_model(client: TrackingClient, name: str, output_dir: str | Path, options: ExportOptions | None = None,
                 *, include_runs: bool = True, workers: int = DEFAULT_WORKERS,
                 progress: ProgressSink | None = None, tracker: Tracker | None = None,
                 workspace: WorkspaceExport | None = None) -> Outcome:
    """Write the model, the selected versions and their runs; a failed version is listed, not fatal.

    Without `include_runs` the versions' runs are not written into the model directory (a bulk
    export stores them once, under ``experiments/``). With `workspace` (a Databricks workspace),
    the runs' notebooks and the model's permissions (last in model.json's model, as the peer has them).
    """
    options = options or ExportOptions()
    out = Path(output_dir)
    registry = Registry(client)
    model = registry.get_model(name)
    if is_prompt(model):  # MLflow 3 keeps prompts as registered models; they travel by export-prompts
        raise InputError(f"registered model '{name}' is a prompt ({IS_PROMPT_TAG}): export it with export-prompts")
    selected = select_versions(registry, name, options)
    tracker = tracker or Tracker(progress)
    tracker.add_total(len(selected))

    def export_run(run_id: str) -> JsonDict | None:
        return registry_runs.export_version_run(client, run_id, out / run_id if include_runs else None,
                                                export_deleted=options.export_deleted_runs, workspace=workspace)

    exported = _parallel(export_run, (v["run_id"] for v in selected), workers)
    experiment_names: dict[str, str] = {}
    aliases = aliases_by_version(model)
    entries: list[JsonDict] = []
    failed: list[JsonDict] = []
    for version in selected:
        entry = version_to_file(version, aliases.get(str(version["version"]), []))
        run = exported[version["run_id"]]
        if isinstance(run, FerryError) or run is None:
            reason = run.message if isinstance(run, FerryError) else "deleted run"
            failed.append({"message": reason, "version": entry})
            tracker.fail()
            continue
        exp_id = run["info"]["experiment_id"]
        if exp_id not in experiment_names:
            experiment_names[exp_id] = client.get_experiment(exp_id)["name"]
        add_run_facts(entry, run_artifact_uri=run["info"]["artifact_uri"], experiment_name=experiment_names[exp_id])
        try:
            if entry["model_id"]:
                logged_models.export_logged_model(client, entry["model_id"], out / entry["model_id"])
            if options.export_version_model:
                registry_runs.download_model(client, version, out / VERSION_MODELS_DIR / entry["version"])
                entry["_download_uri"] = f"models:/{name}/{entry['version']}"
        except FerryError as err:
            failed.append({"message": err.message, "version": entry})
            tracker.fail()
            continue
        entries.append(entry)
        tracker.advance()

    doc = model_to_file(model)
    doc["versions"] = entries
    permissions = workspace.model_permissions(name) if workspace is not None else None
    if permissions is not None:
        doc[PERMISSIONS] = permissions
    info = {
        "num_target_stages": len(parse_stages(options.stages)),
        "num_target_versions": len(options.versions),
        "num_src_versions": len(entries),
        "num_dst_versions": len(entries),
        "failed_versions": failed,
        "export_latest_versions": options.export_latest_versions,
        "export_permissions": permissions is not None,
    }
    registry_files.write(out, MODEL_FILE, {"registered_model": doc}, info, uri=client.uri,
                         script="export_model.py")
    run_count = len({e["run_id"] for e in entries}) if include_runs else 0
    return _outcome(f"exported registered model '{name}' to {out}", entries, failed, runs=run_count, path=out)


def _outcome(message: str, done: Sequence[object], failed: Sequence[JsonDict], *, runs: int,
             path: Path | None = None) -> Outcome:
    """Done when a version was carried: a model whose versions all failed has Failed."""
    failures = [f"version {f['version'].get('version')} of '{f['version'].get('name')}': {f['message']}"
                for f in failed]
    summary = f"{message}: {len(done)} versions" + (f", {len(failures)} failed" if failures else "")
    return Outcome.of(Counts(models=1, versions=len(done), runs=runs), failures, message=summary,
                      path=str(path) if path else None, done=len(done))


# -- import ----------------------------------------------------------------------------------------


RunResolver = Callable[[JsonDict], JsonDict | None]


def read_model(input_dir: Path) -> tuple[JsonDict, str]:
    """The ``registered_model`` section of a model directory and the server it came from."""
    doc = registry_files.read(input_dir / MODEL_FILE)
    model = registry_files.section(doc, "registered_model", input_dir / MODEL_FILE)
    return model, registry_files.source_uri(doc)


def import_model(client: TrackingClient, input_dir: str | Path, *, model_name: str | None = None,
                 experiment_name: str | None = None, delete_model: bool = False,
                 import_source_tags: bool = False, await_creation_for: float | None = None,
                 workers: int = DEFAULT_WORKERS, run_map: Mapping[str, str] | None = None,
                 progress: ProgressSink | None = None, tracker: Tracker | None = None,
                 workspace: WorkspaceImport | None = None) -> Outcome:
    """Import a model directory; running it again creates no new versions.

    Each version's run is imported from ``<input_dir>/<run_id>`` into `experiment_name`, or, when
    that is not given, into an experiment named as the run's source experiment. `run_map` (bulk
    import) gives the ids of destination runs already imported with their experiments, by source run id.
    With `workspace` (a Databricks workspace), the exported permissions, entry by entry, on every
    import (the peer only on the one that creates the model; a PATCH that is there already changes nothing).
    """
    src_dir = Path(input_dir)
    src_model, src_uri = read_model(src_dir)
    name = model_name or src_model["name"]
    versions = sorted(src_model.get("versions") or [], key=lambda v: version_number(v["version"]))
    if experiment_name is None and run_map is None and any(not v.get("_experiment_name") for v in versions):
        raise UsageError("--experiment-name is required: the export does not name the versions' experiments")
    registry = Registry(client)
    if delete_model:
        registry.delete_model(name)
    registry.ensure_model(name, tags=tags_dict(src_model.get("tags")), description=src_model.get("description"))
    if workspace is not None:
        workspace.model_permissions(src_model.get(PERMISSIONS), name)

    tracker = tracker or Tracker(progress)
    tracker.add_total(len(versions))
    existing = imported_versions(registry, name)
    origin = functools.partial(VersionOrigin, src_uri, src_model["name"])
    todo = [v for v in versions if origin(str(v["version"])) not in existing]

    def import_run(run_id: str) -> JsonDict | None:
        if run_map is not None:
            return client.get_run(run_map[run_id]) if run_id in run_map else None
        run_dir = src_dir / run_id
        if not run_dir.is_dir():
            return None
        version = next(v for v in todo if v["run_id"] == run_id)
        return registry_runs.import_version_run(client, run_dir, experiment_name or version["_experiment_name"],
                                                import_source_tags=import_source_tags)

    dst_runs = _parallel(import_run, (v["run_id"] for v in todo), workers)
    failed: list[JsonDict] = []
    done: list[str] = []
    dst_version_of: dict[str, str] = {}
    for version in versions:
        src_version = str(version["version"])
        found = existing.get(origin(src_version))
        if found is not None:
            dst_version_of[src_version] = str(found["version"])
            if found.get("current_stage") != version.get("current_stage"):
                apply_stage(registry, name, str(found["version"]), version)
            tracker.advance()
            continue
        dst_run = dst_runs[version["run_id"]]
        if isinstance(dst_run, FerryError) or dst_run is None:
            reason = dst_run.message if isinstance(dst_run, FerryError) else \
                f"its run {version['run_id']} is not in the export"
            failed.append({"message": reason, "version": version})
            tracker.fail()
            continue
        try:
            logged_model_dir = src_dir / str(model_id_of(version)) if model_id_of(version) else None
            created = create_version(registry, name, version, dst_run, origin(src_version),
                                     logged_model_dir=logged_model_dir, import_source_tags=import_source_tags,
                                     await_creation_for=await_creation_for)
        except FerryError as err:
            failed.append({"message": err.message, "version": version})
            tracker.fail()
            continue
        dst_version_of[src_version] = str(created["version"])
        done.append(src_version)
        tracker.advance()

    aliases = {alias: dst_version_of[v] for v, names in aliases_by_version(src_model).items()
               if v in dst_version_of for alias in names}
    apply_aliases(registry, name, aliases)
    run_count = len({v["run_id"] for v in todo}) if run_map is None else 0
    return _outcome(f"imported registered model '{name}'", done, failed, runs=run_count)

