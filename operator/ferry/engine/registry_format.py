"""The registry half of mlflow-export-import's on-disk format, as its 1.2.x release writes it.

``model.json`` holds ``registered_model``: the REST API's model JSON (tags as a key/value list,
aliases as ``{"alias", "version"}``) plus ``versions``, each shaped like the Python client's
``ModelVersion`` (tags as a dict, aliases as a list of names) with ``_run_artifact_uri`` and
``_experiment_name`` added. ``version.json`` holds one such version as ``model_version``. Readers
accept either shape of tags, because the two files disagree and hand-edited exports exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ferry.engine.files import fmt_ts_millis as human_time
from ferry.errors import InputError

JsonDict = dict[str, Any]

# Destination tags that name where a version came from: they make a second import a no-op.
SOURCE_URI_TAG = "ferry.source.uri"
SOURCE_MODEL_TAG = "ferry.source.model"
SOURCE_VERSION_TAG = "ferry.source.version"
SOURCE_RUN_TAG = "ferry.source.run_id"
FERRY_TAG_PREFIX = "ferry."
PEER_FIELD_PREFIX = "mlflow_exim.field"

NO_STAGE = "None"
STAGES = ("None", "Staging", "Production", "Archived")


def with_human_times(obj: JsonDict, *keys: str) -> JsonDict:
    for key in keys:
        if key in obj:
            obj[f"_{key}"] = human_time(obj[key])
    return obj


def tags_dict(tags: Any) -> dict[str, str]:
    """Tags as a dict, whether stored as a dict or as a REST key/value list."""
    if not tags:
        return {}
    if isinstance(tags, Mapping):
        return {str(k): "" if v is None else str(v) for k, v in tags.items()}
    return {t["key"]: "" if t.get("value") is None else str(t["value"]) for t in tags}


def aliases_by_version(model: JsonDict) -> dict[str, list[str]]:
    """``{"3": ["champion"], ...}`` from a registered model's alias list."""
    found: dict[str, list[str]] = {}
    for entry in model.get("aliases") or []:
        found.setdefault(str(entry["version"]), []).append(entry["alias"])
    return found


def model_to_file(model: JsonDict) -> JsonDict:
    """A REST registered model in the peer's key order, without versions yet."""
    out = {k: v for k, v in model.items() if k not in ("latest_versions", "tags", "aliases")}
    with_human_times(out, "creation_timestamp", "last_updated_timestamp")
    out["tags"] = model.get("tags", [])
    out["aliases"] = model.get("aliases", [])
    return out


def version_to_file(version: JsonDict, aliases: list[str]) -> JsonDict:
    """A REST model version shaped like the Python client's ``ModelVersion`` the peer dumps."""
    out: JsonDict = {
        "name": version["name"],
        "version": str(version["version"]),
        "creation_timestamp": version.get("creation_timestamp"),
        "last_updated_timestamp": version.get("last_updated_timestamp"),
        "description": version.get("description", ""),
        "user_id": version.get("user_id", ""),
        "current_stage": version.get("current_stage", NO_STAGE),
        "source": version.get("source", ""),
        "run_id": version.get("run_id", ""),
        "run_link": version.get("run_link", ""),
        "status": version.get("status", "READY"),
        "status_message": version.get("status_message"),
        "tags": tags_dict(version.get("tags")),
        "aliases": list(aliases),
        "model_id": model_id_of(version),
        "params": None,
        "metrics": None,
        "deployment_job_state": "None",
        "workspace": version.get("workspace", "default"),
    }
    return out


def add_run_facts(version: JsonDict, *, run_artifact_uri: str, experiment_name: str) -> JsonDict:
    version["_run_artifact_uri"] = run_artifact_uri
    version["_experiment_name"] = experiment_name
    return with_human_times(version, "creation_timestamp", "last_updated_timestamp")


def source_path(version: JsonDict) -> str:
    """Where the version's model lies inside its run's artifacts ("model", "dir/model" or "").

    The peer finds it by searching for the word "artifacts", which breaks on servers whose
    artifact URIs start with ``mlflow-artifacts:``; the run's artifact URI, when recorded, is exact.
    """
    source = str(version.get("source") or "")
    run_artifact_uri = version.get("_run_artifact_uri")
    if run_artifact_uri and source.startswith(run_artifact_uri.rstrip("/")):
        return source[len(run_artifact_uri.rstrip("/")):].strip("/")
    run_id = version.get("run_id") or ""
    after_run = source.find(f"/{run_id}/") if run_id else -1
    if after_run >= 0:
        rest = source[after_run + len(run_id) + 2:]
        return rest[len("artifacts"):].strip("/") if rest.startswith("artifacts") else rest.strip("/")
    if source.startswith("runs:/"):
        return source[len("runs:/"):].partition("/")[2].strip("/")
    raise InputError(f"cannot tell where the model of version {version.get('version')} lies in its run: "
                     f"source '{source}' does not name run '{run_id}'")


def user_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Tags without our own ``ferry.*`` bookkeeping (what comparing source and copy looks at)."""
    return {k: v for k, v in tags.items() if not k.startswith(FERRY_TAG_PREFIX)}


def peer_source_tags(version: JsonDict) -> dict[str, str]:
    """``--import-source-tags``: the source version's fields as ``mlflow_exim.field.*`` tags (as the peer)."""
    tags = {f"{PEER_FIELD_PREFIX}.{k}": str(v) for k, v in version.items()
            if k != "tags"}
    for key in ("creation_timestamp", "last_updated_timestamp"):
        if version.get(key):
            tags[f"{PEER_FIELD_PREFIX}._{key}"] = str(human_time(version[key]))
    return tags


def version_number(version: Any) -> int:
    """Versions are strings on the wire; order them as numbers (2 before 10)."""
    return int(str(version))


def model_id_of(version: JsonDict) -> str | None:
    """The MLflow 3 logged model a version was registered from (source ``models:/<id>``), if any."""
    source = str(version.get("source") or "")
    if not source.startswith("models:/"):
        return version.get("model_id") or None
    return str(version.get("model_id") or source[len("models:/"):].split("/")[0])
