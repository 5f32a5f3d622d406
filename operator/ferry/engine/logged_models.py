"""MLflow 3 logged models behind registered versions (a version whose source is ``models:/<model_id>``).

Such a version's files are not in its run's artifacts but in the logged model's own artifact
location, so the logged model travels with the version: ``<dir>/logged_model.json`` (its fields,
as mlflow-export-import writes them) and ``<dir>/artifacts/``. On import a new logged model is
created on the imported run, its files uploaded and the model finalized; the new version then
points at ``models:/<new id>``.
"""

from __future__ import annotations

from pathlib import Path

from ferry.engine import registry_files
from ferry.engine.registry_format import JsonDict, tags_dict
from ferry.tracking.artifacts import ArtifactStore
from ferry.tracking.client import TrackingClient

LOGGED_MODEL_FILE = "logged_model.json"
ARTIFACTS_DIR = "artifacts"
SOURCE_MODEL_ID_TAG = "ferry.source.model_id"
MODEL_VERSIONS_TAG = "mlflow.modelVersions"  # the server keeps it; never copied
READY = "LOGGED_MODEL_READY"


def _get(client: TrackingClient, model_id: str) -> JsonDict:
    return client.call("GET", f"logged-models/{model_id}", what=f"logged model '{model_id}'")["model"]


def export_logged_model(client: TrackingClient, model_id: str, out_dir: Path) -> int:
    """Write the logged model's fields and files to `out_dir`; returns the bytes downloaded."""
    model = _get(client, model_id)
    info, data = model["info"], model.get("data") or {}
    _, nbytes = ArtifactStore(client, info["artifact_uri"]).download_tree(out_dir / ARTIFACTS_DIR)
    fields = {
        "experiment_id": info.get("experiment_id"),
        "model_id": info["model_id"],
        "name": info.get("name"),
        "artifact_location": info.get("artifact_uri"),
        "creation_timestamp": info.get("creation_timestamp_ms"),
        "last_updated_timestamp": info.get("last_updated_timestamp_ms"),
        "model_type": info.get("model_type"),
        "source_run_id": info.get("source_run_id"),
        "status": str(info.get("status", "")).removeprefix("LOGGED_MODEL_"),
        "status_message": info.get("status_message"),
        "tags": tags_dict(info.get("tags")),
        "params": {p["key"]: p.get("value", "") for p in data.get("params") or []},
        "metrics": list(data.get("metrics") or []),
    }
    registry_files.write(out_dir, LOGGED_MODEL_FILE, fields, uri=client.uri, script="export_logged_model.py")
    return nbytes


def import_logged_model(client: TrackingClient, in_dir: Path, dst_run: JsonDict) -> str:
    """Recreate the logged model in `in_dir` as an output of `dst_run`; returns its new id.

    A logged model this import created before (tagged with the source id) is reused.
    """
    src = registry_files.read(in_dir / LOGGED_MODEL_FILE, "an exported logged model")["mlflow"]
    run_id = dst_run["info"]["run_id"]
    for output in (dst_run.get("outputs") or {}).get("model_outputs") or []:
        existing = _get(client, output["model_id"])["info"]
        if tags_dict(existing.get("tags")).get(SOURCE_MODEL_ID_TAG) == src["model_id"] and \
                existing.get("status") == READY:
            return str(existing["model_id"])
    tags = {k: v for k, v in tags_dict(src.get("tags")).items() if k != MODEL_VERSIONS_TAG}
    tags[SOURCE_MODEL_ID_TAG] = str(src["model_id"])
    body: JsonDict = {
        "experiment_id": dst_run["info"]["experiment_id"],
        "source_run_id": run_id,
        "params": [{"key": k, "value": str(v)} for k, v in (src.get("params") or {}).items()],
        "tags": [{"key": k, "value": v} for k, v in tags.items()],
    }
    for key in ("name", "model_type"):
        if src.get(key):
            body[key] = src[key]
    created = client.call("POST", "logged-models", json=body)["model"]["info"]
    model_id = str(created["model_id"])
    artifacts = in_dir / ARTIFACTS_DIR
    if artifacts.is_dir():
        ArtifactStore(client, created["artifact_uri"]).upload_tree(artifacts)
    client.call("PATCH", f"logged-models/{model_id}", json={"model_id": model_id, "status": READY})
    client.call("POST", "runs/outputs", json={"run_id": run_id, "models": [{"model_id": model_id, "step": 0}]})
    return model_id
