"""Registered models kept in step: descriptions, tags, versions, stages and aliases.

MLflow moves a model's ``last_updated_timestamp`` for a new version, a stage or a description,
but not for a tag or an alias. So each sync lists the models of both servers (a paged request
per thousand models, whatever their versions) and compares what the listing carries; only a
model that differs, or whose versions changed since the window (one search of versions newest
first, read until older than the window), has its versions read. A version tag is the one edit
only the full comparison finds.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ferry.engine import logged_models, runs
from ferry.engine.experiments_bulk import rename
from ferry.engine.logged_models_bulk import imported_model_ids
from ferry.engine.mirror_report import SyncReport
from ferry.engine.mirror_runs import copy_new
from ferry.engine.model_versions import VersionOrigin, create_version, imported_versions
from ferry.engine.registry_format import (
    NO_STAGE,
    SOURCE_URI_TAG,
    add_run_facts,
    model_id_of,
    tags_dict,
    version_to_file,
)
from ferry.errors import FerryError
from ferry.options import ALL
from ferry.tracking import JsonDict, TrackingClient, tags_of
from ferry.tracking.registry import Registry

PROMPT_TAG = "mlflow.prompt.is_prompt"
OUR_PREFIX = "ferry."


@dataclass
class RunCopies:
    """The destination's copy of a source run, for a version: mirrored already, or copied now."""

    src: TrackingClient
    dst: TrackingClient
    known: dict[str, str]  # source run id -> copy id, of the runs this sync handled
    renames: dict[str, str] = field(default_factory=dict)
    scratch: Path | None = None

    def copy_of(self, src_run_id: str) -> JsonDict:
        if src_run_id in self.known:
            return self.dst.get_run(self.known[src_run_id])
        run = self.src.get_run(src_run_id)
        experiment = self.src.get_experiment(run["info"]["experiment_id"])
        dst_exp = self.dst.get_or_create_experiment(rename(experiment["name"], self.renames))["experiment_id"]
        for found in runs.find_imported(self.dst, dst_exp, src_run_id, self.src.uri):
            if tags_of(found["data"]).get(runs.IMPORT_COMPLETE_TAG) == "true":
                return found
        done = copy_new(self.src, self.dst, run, dst_exp, include_artifacts=True, scratch=self.scratch)
        self.known[src_run_id] = done.dst_run_id
        return self.dst.get_run(done.dst_run_id)


def sync_models(src: TrackingClient, dst: TrackingClient, names: Sequence[str], renames: dict[str, str],
                window: int | None, delete_missing: bool, report: SyncReport, copies: RunCopies) -> None:
    """Bring every selected registered model in step (or, in a full comparison, compare them all)."""
    if not names:
        return
    everything = any(n in ALL for n in names)
    source = {m["name"]: m for m in src.search_registered_models()
              if (everything or m["name"] in names) and tags_of(m).get(PROMPT_TAG) != "true"}
    target = {m["name"]: m for m in dst.search_registered_models()}
    touched = _models_with_changed_versions(src, window, set(source))
    for name, model in sorted(source.items()):
        dst_name = rename(name, renames)
        copy = target.get(dst_name)
        if window is not None and name not in touched and copy is not None and _listing_equal(model, copy):
            continue
        try:
            model_written, versions_written = sync_model(src, dst, model, dst_name, delete_missing, copies)
        except FerryError as err:
            report.failed.append(f"registered model '{name}': {err.message}")
            continue
        report.counts.models += int(model_written or bool(versions_written))
        report.counts.versions += versions_written
    if delete_missing:
        for name in sorted(set(target) - {rename(n, renames) for n in source}):
            if _mirrored_from(target[name], src.uri) and (everything or name in names):
                Registry(dst).delete_model(name)
                report.counts.models += 1


def _models_with_changed_versions(src: TrackingClient, window: int | None, names: set[str]) -> set[str]:
    if window is None:
        return set(names)
    touched: set[str] = set()
    for version in src.search_model_versions(order_by=["last_updated_timestamp DESC"]):
        if int(version.get("last_updated_timestamp") or 0) < window:
            break
        touched.add(version["name"])
    return touched & names


def _listing_equal(model: JsonDict, copy: JsonDict) -> bool:
    """Description, user tags and aliases (by version number) the same in both listings."""
    def user_tags(m: JsonDict) -> dict[str, str]:
        return {k: v for k, v in tags_of(m).items() if not k.startswith(OUR_PREFIX)}

    def aliases(m: JsonDict) -> dict[str, str]:
        return {a["alias"]: str(a["version"]) for a in m.get("aliases") or []}

    return ((model.get("description") or "") == (copy.get("description") or "")
            and user_tags(model) == user_tags(copy) and aliases(model) == aliases(copy))


def _mirrored_from(model: JsonDict, src_uri: str) -> bool:
    """A destination model holding versions copied from `src_uri` (the mirror made it)."""
    return any(tags_dict(v.get("tags")).get(SOURCE_URI_TAG) == src_uri for v in model.get("latest_versions") or [])


def sync_model(src: TrackingClient, dst: TrackingClient, model: JsonDict, dst_name: str, delete_missing: bool,
               copies: RunCopies) -> tuple[bool, int]:
    """One model: metadata, every version (created or updated), aliases.

    Returns whether the model's own metadata or aliases were written, and how many versions were.
    """
    src_registry, registry = Registry(src), Registry(dst)
    name = model["name"]
    tags = {k: v for k, v in tags_of(model).items() if not k.startswith(OUR_PREFIX)}
    description = model.get("description") or ""
    current = registry.find_model(dst_name)
    model_written = current is None
    if current is None:
        registry.create_model(dst_name, tags=tags, description=description or None)
        current = {"tags": [{"key": k, "value": v} for k, v in tags.items()], "description": description}
    if (current.get("description") or "") != description:
        dst.call("PATCH", "registered-models/update", json={"name": dst_name, "description": description})
        model_written = True
    have_tags = tags_of(current)
    for key, value in tags.items():
        if have_tags.get(key) != value:
            registry.set_model_tag(dst_name, key, value)
            model_written = True
    for key in set(have_tags) - set(tags):
        if not key.startswith(OUR_PREFIX):
            dst.call("DELETE", "registered-models/delete-tag", json={"name": dst_name, "key": key})
            model_written = True
    existing = imported_versions(registry, dst_name)
    written = 0
    dst_version_of: dict[str, str] = {}
    src_versions = src_registry.versions(name)
    for version in src_versions:
        number = str(version["version"])
        origin = VersionOrigin(src.uri, name, number)
        found = existing.get(origin)
        if found is None:
            found = _create(src, registry, dst_name, version, origin, copies)
            written += 1
        elif _version_in_step(registry, dst_name, version, found):
            written += 1
        dst_version_of[number] = str(found["version"])
    wanted = {a["alias"]: dst_version_of[str(a["version"])] for a in model.get("aliases") or []
              if str(a["version"]) in dst_version_of}
    have = {a["alias"]: str(a["version"]) for a in (current if "aliases" in current
                                                     else registry.get_model(dst_name)).get("aliases") or []}
    for alias, number in wanted.items():
        if have.get(alias) != number:
            registry.set_alias(dst_name, alias, number)
            model_written = True
    for alias in set(have) - set(wanted):
        dst.call("DELETE", "registered-models/alias", json={"name": dst_name, "alias": alias})
        model_written = True
    if delete_missing:
        present = {str(v["version"]) for v in src_versions}
        for origin, found in existing.items():
            if origin.uri == src.uri and origin.model == name and origin.version not in present:
                dst.call("DELETE", "model-versions/delete", json={"name": dst_name, "version": found["version"]})
                written += 1
    return model_written, written


def _create(src: TrackingClient, registry: Registry, dst_name: str, version: JsonDict, origin: VersionOrigin,
            copies: RunCopies) -> JsonDict:
    run = copies.copy_of(str(version["run_id"])) if version.get("run_id") else None
    if run is None:
        raise FerryError(f"version {version['version']} has no run to copy")
    src_run = src.get_run(str(version["run_id"]))
    entry = add_run_facts(version_to_file(version, []), run_artifact_uri=src_run["info"]["artifact_uri"],
                          experiment_name="")
    model_id = model_id_of(version)
    if model_id is None:
        return create_version(registry, dst_name, entry, run, origin)
    mirrored = imported_model_ids(registry.client, str(run["info"]["experiment_id"])).get(model_id)
    if mirrored is not None:  # the experiment's logged models are mirrored: point at that copy
        entry = {**entry, "source": f"models:/{mirrored}", "model_id": mirrored}
        return create_version(registry, dst_name, entry, run, origin)
    with tempfile.TemporaryDirectory(dir=copies.scratch, prefix="ferry-mirror-model-") as tmp:
        logged_models.export_logged_model(src, model_id, Path(tmp) / model_id)
        return create_version(registry, dst_name, entry, run, origin, logged_model_dir=Path(tmp) / model_id)


def _version_in_step(registry: Registry, name: str, version: JsonDict, copy: JsonDict) -> bool:
    """Stage, description and user tags of an existing copy; True when something was written."""
    wrote = False
    number = str(copy["version"])
    stage = version.get("current_stage") or NO_STAGE
    if stage != (copy.get("current_stage") or NO_STAGE):
        registry.transition_stage(name, number, stage)  # back to None too
        wrote = True
    if (version.get("description") or "") != (copy.get("description") or ""):
        registry.client.call("PATCH", "model-versions/update",
                             json={"name": name, "version": number, "description": version.get("description") or ""})
        wrote = True
    have = tags_dict(copy.get("tags"))
    for key, value in tags_dict(version.get("tags")).items():
        if not key.startswith(OUR_PREFIX) and have.get(key) != value:
            registry.set_version_tag(name, number, key, value)
            wrote = True
    return wrote
