"""Export and import of one registered model version, and the version-creating core of model import.

A version directory is what mlflow-export-import 1.2.x writes: ``version.json``, ``model.json``
(the registered model, without versions), ``experiment.json`` (the run's experiment) and ``run/``.

Creating a version is idempotent: the destination version carries the source server, model and
version as ``ferry.source.*`` tags, and a version already carrying them is reused instead of
registered again.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ferry.engine import logged_models, registry_files, registry_runs
from ferry.engine.registry_format import (
    NO_STAGE,
    SOURCE_MODEL_TAG,
    SOURCE_RUN_TAG,
    SOURCE_URI_TAG,
    SOURCE_VERSION_TAG,
    JsonDict,
    add_run_facts,
    aliases_by_version,
    model_id_of,
    model_to_file,
    peer_source_tags,
    source_path,
    tags_dict,
    version_to_file,
    with_human_times,
)
from ferry.errors import InputError, NotFoundError
from ferry.outcome import Counts, Outcome
from ferry.tracking.client import TrackingClient
from ferry.tracking.registry import Registry

VERSION_FILE = "version.json"
MODEL_FILE = "model.json"
EXPERIMENT_FILE = "experiment.json"
RUN_DIR = "run"
VERSION_MODEL_DIR = "version_model"


# -- the shared core: one source version becomes one destination version ---------------------------


@dataclass(frozen=True)
class VersionOrigin:
    """Where a version came from; stored on the destination version as ``ferry.source.*`` tags."""

    uri: str
    model: str
    version: str

    def tags(self) -> dict[str, str]:
        return {SOURCE_URI_TAG: self.uri, SOURCE_MODEL_TAG: self.model, SOURCE_VERSION_TAG: self.version}

    @classmethod
    def of(cls, tags: Mapping[str, str]) -> VersionOrigin | None:
        if SOURCE_MODEL_TAG not in tags or SOURCE_VERSION_TAG not in tags:
            return None
        return cls(tags.get(SOURCE_URI_TAG, ""), tags[SOURCE_MODEL_TAG], tags[SOURCE_VERSION_TAG])


def imported_versions(registry: Registry, name: str) -> dict[VersionOrigin, JsonDict]:
    """The destination model's versions that an earlier import created, by their origin."""
    if registry.find_model(name) is None:
        return {}
    found: dict[VersionOrigin, JsonDict] = {}
    for version in registry.versions(name):
        origin = VersionOrigin.of(tags_dict(version.get("tags")))
        if origin is not None:
            found.setdefault(origin, version)
    return found


def create_version(registry: Registry, name: str, src: JsonDict, dst_run: JsonDict, origin: VersionOrigin, *,
                   logged_model_dir: Path | None = None, import_source_tags: bool = False,
                   await_creation_for: float | None = None, stage: bool = True) -> JsonDict:
    """Register `src` (a version in the file format) as a new version of `name` on `dst_run`.

    The source is rewritten to the same path inside the new run's artifacts, so the version
    points at the copied model files, not at the source server. A version of an MLflow 3 logged
    model gets a copy of that model (from `logged_model_dir`) on the new run.
    """
    source, model_id = _target_source(registry.client, src, dst_run, logged_model_dir)
    tags = {**tags_dict(src.get("tags")), **origin.tags(), SOURCE_RUN_TAG: str(src.get("run_id", ""))}
    if import_source_tags:
        tags.update(peer_source_tags(src))
    created = registry.create_version(name, source=source, run_id=dst_run["info"]["run_id"], tags=tags,
                                      description=src.get("description") or None, model_id=model_id)
    version = str(created["version"])
    if await_creation_for:
        registry.await_ready(name, version, await_creation_for)
    if stage:
        apply_stage(registry, name, version, src)
    return registry.get_version(name, version)


def _target_source(client: TrackingClient, src: JsonDict, dst_run: JsonDict,
                   logged_model_dir: Path | None) -> tuple[str, str | None]:
    model_id = model_id_of(src)
    if model_id is None:
        artifact_uri = dst_run["info"]["artifact_uri"].rstrip("/")
        path = source_path(src)
        return (f"{artifact_uri}/{path}" if path else artifact_uri), None
    if logged_model_dir is None:  # same server, same run: the same logged model
        return str(src["source"]), model_id
    if not (logged_model_dir / logged_models.LOGGED_MODEL_FILE).is_file():
        raise InputError(f"logged model {model_id} of version {src.get('version')} is not in the export "
                         f"({logged_model_dir} is missing)")
    new_id = logged_models.import_logged_model(client, logged_model_dir, dst_run)
    return f"models:/{new_id}", new_id


def apply_stage(registry: Registry, name: str, version: str, src: JsonDict) -> None:
    wanted = src.get("current_stage") or NO_STAGE
    if wanted != NO_STAGE:
        registry.transition_stage(name, version, wanted)


def apply_aliases(registry: Registry, name: str, aliases: Mapping[str, str]) -> None:
    """Point each alias at its destination version, touching only those that differ."""
    current = {a["alias"]: str(a["version"]) for a in registry.get_model(name).get("aliases") or []}
    for alias, version in aliases.items():
        if current.get(alias) != version:
            registry.set_alias(name, alias, version)


# -- export ----------------------------------------------------------------------------------------


def export_model_version(client: TrackingClient, name: str, version: str, output_dir: str | Path, *,
                         export_version_model: bool = False) -> Outcome:
    """Write one version with its model, run and experiment in the peer's version layout."""
    out = Path(output_dir)
    registry = Registry(client)
    model = registry.get_model(name)
    found = registry.get_version(name, str(version))
    aliases = aliases_by_version(model).get(str(found["version"]), [])

    write = functools.partial(registry_files.write, out, uri=client.uri, script="export_model_version.py")
    write(MODEL_FILE, {"registered_model": model_to_file(model)})
    # A version's run is exported even if deleted: without it the version cannot be rebuilt.
    run = registry_runs.export_version_run(client, found["run_id"], out / RUN_DIR, export_deleted=True)
    experiment = client.get_experiment(run["info"]["experiment_id"])
    write(EXPERIMENT_FILE, {"experiment": with_human_times(experiment, "creation_time", "last_update_time")})
    entry = add_run_facts(version_to_file(found, aliases), run_artifact_uri=run["info"]["artifact_uri"],
                          experiment_name=experiment["name"])
    if model_id_of(found):  # where the peer puts it: a directory named by the run id
        logged_models.export_logged_model(client, str(model_id_of(found)), out / found["run_id"])
    info: JsonDict = {}
    if export_version_model:
        registry_runs.download_model(client, found, out / VERSION_MODEL_DIR)
        entry["_download_uri"] = f"models:/{name}/{found['version']}"
        info["vrm_export_version_model"] = True
    write(VERSION_FILE, {"model_version": entry}, info)
    return Outcome.of(Counts(runs=1, versions=1), path=str(out),
                      message=f"exported version {found['version']} of registered model '{name}' to {out}")


# -- import ----------------------------------------------------------------------------------------


def import_model_version(client: TrackingClient, input_dir: str | Path, *, model_name: str,
                         experiment_name: str, create_model: bool = False, import_source_tags: bool = False,
                         import_stages_and_aliases: bool = False, import_metadata: bool = False,
                         await_creation_for: float | None = None) -> Outcome:
    """Import a version directory as a new version of `model_name` (idempotently)."""
    src_dir = Path(input_dir)
    version_doc = registry_files.read(src_dir / VERSION_FILE)
    src = registry_files.section(version_doc, "model_version", src_dir / VERSION_FILE)
    src_model = registry_files.section(registry_files.read(src_dir / MODEL_FILE), "registered_model",
                                       src_dir / MODEL_FILE)
    registry = Registry(client)

    if import_metadata:
        experiment = registry_files.section(registry_files.read(src_dir / EXPERIMENT_FILE), "experiment",
                                            src_dir / EXPERIMENT_FILE)
        client.get_or_create_experiment(experiment_name, tags=tags_dict(experiment.get("tags")))
    if create_model:
        if import_metadata:
            registry.ensure_model(model_name, tags=tags_dict(src_model.get("tags")),
                                  description=src_model.get("description"))
        else:
            registry.create_model(model_name)
    elif registry.find_model(model_name) is None:
        raise NotFoundError(f"registered model '{model_name}' not found in MLflow at {registry.uri} "
                            "(use --create-model True to create it)")

    origin = VersionOrigin(registry_files.source_uri(version_doc), src_model.get("name") or src["name"],
                           str(src["version"]))
    return register_once(
        registry, model_name, src, origin,
        lambda: registry_runs.import_version_run(client, src_dir / RUN_DIR, experiment_name,
                                        import_source_tags=import_source_tags),
        import_source_tags=import_source_tags, stages_and_aliases=import_stages_and_aliases,
        await_creation_for=await_creation_for, logged_model_dir=src_dir / str(src.get("run_id")))


def register_once(registry: Registry, model_name: str, src: JsonDict, origin: VersionOrigin,
                  dst_run: Callable[[], JsonDict], *, import_source_tags: bool, stages_and_aliases: bool,
                  await_creation_for: float | None = None, logged_model_dir: Path | None = None) -> Outcome:
    """Create the version unless an earlier import did; `dst_run` provides its run only when needed."""
    created = imported_versions(registry, model_name).get(origin)
    if created is None:
        created = create_version(registry, model_name, src, dst_run(), origin, logged_model_dir=logged_model_dir,
                                 import_source_tags=import_source_tags, await_creation_for=await_creation_for,
                                 stage=stages_and_aliases)
        counts, verb = Counts(runs=1, versions=1), "imported"
    else:
        if stages_and_aliases and created.get("current_stage") != src.get("current_stage"):
            apply_stage(registry, model_name, str(created["version"]), src)
        counts, verb = Counts(), "already imported as"
    if stages_and_aliases:
        apply_aliases(registry, model_name, {a: str(created["version"]) for a in src.get("aliases") or []})
    return Outcome.of(counts, message=f"{verb} version {created['version']} of registered model '{model_name}'")


# -- copy ------------------------------------------------------------------------------------------


def copy_model_version(src: TrackingClient, dst: TrackingClient, src_model: str, src_version: str, dst_model: str,
                       *, dst_experiment_name: str | None = None, copy_stages_and_aliases: bool = False,
                       copy_lineage_tags: bool = False, work_dir: str | Path | None = None) -> Outcome:
    """Copy one version (with its run) to another model, on the same or another server.

    Without `dst_experiment_name` on the same server, the new version shares the source run, as
    with the peer; across servers the run is copied into an experiment named as its source's.
    """
    if src.uri == dst.uri and not dst_experiment_name:
        registry = Registry(dst)
        found = registry.get_version(src_model, str(src_version))
        run = dst.get_run(found["run_id"])
        aliases = aliases_by_version(registry.get_model(src_model)).get(str(found["version"]), [])
        entry = add_run_facts(version_to_file(found, aliases), run_artifact_uri=run["info"]["artifact_uri"],
                              experiment_name="")
        registry.create_model(dst_model)
        return register_once(registry, dst_model, entry, VersionOrigin(src.uri, src_model, entry["version"]),
                             lambda: run, import_source_tags=copy_lineage_tags,
                             stages_and_aliases=copy_stages_and_aliases)
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="copy-model-version-") as tmp:
        export_model_version(src, src_model, src_version, tmp)
        if not dst_experiment_name:
            experiment = registry_files.section(registry_files.read(Path(tmp) / EXPERIMENT_FILE), "experiment",
                                                Path(tmp) / EXPERIMENT_FILE)
            dst_experiment_name = str(experiment["name"])
        outcome = import_model_version(dst, tmp, model_name=dst_model, experiment_name=dst_experiment_name,
                                       create_model=True, import_stages_and_aliases=copy_stages_and_aliases,
                                       import_source_tags=copy_lineage_tags)
    outcome.message = f"copied version {src_version} of '{src_model}' at {src.uri}: {outcome.message}"
    return outcome
