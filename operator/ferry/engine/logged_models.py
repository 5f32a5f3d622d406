"""Export and import of one MLflow 3 logged model, in mlflow-export-import's layout.

A logged model's files are not in its run's artifacts but in its own artifact location, so it
travels as a directory of its own: ``<dir>/logged_model.json`` (its fields, as the peer writes
them, with the source run's dataset inputs) and ``<dir>/artifacts/``. Registered versions whose
source is ``models:/<id>`` carry it too (`ferry.engine.model_versions`).

On import the model is recreated in the destination experiment on the *imported* run that
produced it: the caller's run map (source run id → destination run id), else the run an earlier
run import tagged with ``ferry.source.run_id``. Its metrics are logged through the imported runs
that measured them, with the new ``model_id``. The new model carries ``ferry.source.model_id``
and, set last, ``ferry.import.complete``: a rerun finds it and creates nothing; a model left
half-made by a killed import is deleted and made again.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ferry.engine import registry_files, runs
from ferry.engine.registry_format import JsonDict, tags_dict
from ferry.errors import NotFoundError, ServerError
from ferry.storage import spool
from ferry.tracking import logged_models as lm
from ferry.tracking.client import TrackingClient, tags_of

LOGGED_MODEL_FILE = "logged_model.json"
ARTIFACTS_DIR = "artifacts"
SOURCE_MODEL_ID_TAG = "ferry.source.model_id"
IMPORT_COMPLETE_TAG = runs.IMPORT_COMPLETE_TAG
STANDIN_RUN_TAG = "ferry.standin.run_id"  # a run made for a model whose source run was not imported
MODEL_VERSIONS_TAG = "mlflow.modelVersions"  # the registry keeps it on the model; never copied
READY = lm.READY
# The file holds MLflow's Python names (what the peer writes); the REST API speaks the proto's.
STATUS_TO_FILE = {lm.PENDING: "PENDING", lm.READY: "READY", lm.FAILED: "FAILED"}
FINAL_STATUSES = {"READY": lm.READY, "FAILED": lm.FAILED}
METRIC_FIELDS = ("key", "value", "timestamp", "step", "model_id", "dataset_name", "dataset_digest", "run_id")
_MLMODEL_LINE = re.compile(r"^(run_id|model_id|model_uuid|artifact_path): .*$", re.MULTILINE)

RunResolver = Callable[[str], str | None]


# -- export ----------------------------------------------------------------------------------------


def is_exported(out_dir: Path) -> bool:
    """Finished here, or finished and moved to the export's destination (`ferry.storage.spool`)."""
    return (out_dir / LOGGED_MODEL_FILE).is_file() or spool.current().holds(out_dir)


def export_logged_model(client: TrackingClient, model_id: str, out_dir: Path) -> int:
    """Write the logged model's files, then its fields (the completion marker); returns the bytes downloaded."""
    models = lm.LoggedModels(client)
    model = models.get(model_id)
    _, nbytes = models.artifacts(model).download_tree(out_dir / ARTIFACTS_DIR)
    run = _source_run(client, model["info"].get("source_run_id"))
    registry_files.write(out_dir, LOGGED_MODEL_FILE, logged_model_document(model, run), uri=client.uri,
                         script="export_logged_model.py")
    spool.current().finished(out_dir)  # complete: the export's destination may take it now
    return nbytes


def _source_run(client: TrackingClient, run_id: str | None) -> JsonDict | None:
    if not run_id:
        return None
    try:
        return client.get_run(run_id)
    except NotFoundError:  # a run deleted for good: the model still travels, without its datasets
        return None


def logged_model_document(model: JsonDict, run: JsonDict | None) -> JsonDict:
    """The ``mlflow`` section of logged_model.json, as mlflow-export-import 1.2 writes it.

    Metrics keep every point with its step, timestamp, run and dataset (null when unset, as the
    peer's importer reads each key). ``output_step`` (ours) is the step at which the source run
    recorded the model as its output.
    """
    info, data = model["info"], model.get("data") or {}
    model_id = str(info["model_id"])
    doc: JsonDict = {
        "experiment_id": info.get("experiment_id"),
        "model_id": model_id,
        "name": info.get("name"),
        "artifact_location": info.get("artifact_uri"),
        "creation_time": info.get("creation_timestamp_ms"),
        "last_updated_timestamp": info.get("last_updated_timestamp_ms"),
        "model_type": info.get("model_type"),
        "source_run_id": info.get("source_run_id"),
        "status": STATUS_TO_FILE.get(str(info.get("status")), str(info.get("status", ""))),
        "status_message": info.get("status_message") or "",
        "tags": tags_dict(info.get("tags")),
        "params": {p["key"]: p.get("value", "") for p in data.get("params") or []},
        "metrics": [{k: m.get(k) for k in METRIC_FIELDS} for m in data.get("metrics") or []],
        "model_uri": f"models:/{model_id}",
    }
    if run is not None:
        doc["dataset_inputs"] = [{"dataset": d.get("dataset", {}), "tags": d.get("tags", [])}
                                 for d in (run.get("inputs") or {}).get("dataset_inputs", [])]
        steps = [o.get("step", 0) for o in (run.get("outputs") or {}).get("model_outputs", [])
                 if o.get("model_id") == model_id]
        doc["output_step"] = int(steps[0]) if steps else None
    return doc


# -- import ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoggedModelImport:
    src_model_id: str
    dst_model_id: str
    created: bool
    standin_run: bool = False  # its source run was not imported: it hangs off a stand-in run


def read_logged_model(in_dir: Path) -> JsonDict:
    """The ``mlflow`` section of ``<in_dir>/logged_model.json``; `InputError` if it is not one."""
    return dict(registry_files.read(in_dir / LOGGED_MODEL_FILE, "an exported logged model")["mlflow"])


def imported_runs(client: TrackingClient, experiment_id: str,
                  run_map: Mapping[str, str] | None = None) -> RunResolver:
    """Source run id → the destination run imported from it: `run_map`, else the run import's tag."""
    cache: dict[str, str | None] = dict(run_map or {})

    def resolve(src_run_id: str) -> str | None:
        if src_run_id not in cache:
            done = [r for r in runs.find_imported(client, experiment_id, src_run_id)
                    if tags_of(r["data"]).get(runs.IMPORT_COMPLETE_TAG) == "true"
                    and r["info"].get("lifecycle_stage") != "deleted"]
            cache[src_run_id] = str(done[0]["info"]["run_id"]) if done else None
        return cache[src_run_id]
    return resolve


def find_imported_model(models: lm.LoggedModels, experiment_id: str, src_model_id: str) -> JsonDict | None:
    """The finished copy of `src_model_id` an earlier import made; half-made copies are deleted."""
    found = None
    for model in models.find_tagged(experiment_id, SOURCE_MODEL_ID_TAG, src_model_id):
        if tags_dict(model["info"].get("tags")).get(IMPORT_COMPLETE_TAG) == "true":
            found = found or model
        else:
            models.delete(model["info"]["model_id"])
    return found


def import_logged_model_dir(client: TrackingClient, in_dir: Path, experiment_id: str, resolve_run: RunResolver, *,
                            mlmodel_fix: bool = True) -> LoggedModelImport:
    """Recreate the logged model in `in_dir` in experiment `experiment_id`, unless an earlier import did."""
    src = read_logged_model(in_dir)
    src_id = str(src["model_id"])
    models = lm.LoggedModels(client)
    existing = find_imported_model(models, experiment_id, src_id)
    if existing is not None:
        return LoggedModelImport(src_id, str(existing["info"]["model_id"]), created=False)
    if models.missing:  # before any stand-in run is made for it
        raise ServerError(f"MLflow at {client.uri} has no logged models (MLflow 2): cannot create '{src.get('name')}'")

    src_run = str(src.get("source_run_id") or "")
    run_id = resolve_run(src_run) if src_run else None
    standin = bool(src_run) and run_id is None
    if standin:
        run_id = _standin_run(client, experiment_id, src_run, src.get("dataset_inputs") or [])
    metrics = _metrics_by_run(src.get("metrics") or [], resolve_run, run_id)
    tags = {k: v for k, v in tags_dict(src.get("tags")).items() if k != MODEL_VERSIONS_TAG}
    created = models.create(experiment_id, name=src.get("name"), model_type=src.get("model_type"),
                            source_run_id=run_id, params={k: str(v) for k, v in (src.get("params") or {}).items()},
                            tags={**tags, SOURCE_MODEL_ID_TAG: src_id})
    dst_id = str(created["info"]["model_id"])
    with spool.current().borrowed(in_dir):  # an export in a bucket: its artifacts arrive now
        artifacts = in_dir / ARTIFACTS_DIR
        if artifacts.is_dir():
            _upload(models, created, artifacts, run_id if mlmodel_fix else None, mlmodel_fix)
    for metric_run, points in metrics.items():
        models.log_metrics(metric_run, [{**p, "model_id": dst_id} for p in points])
    if run_id:
        _link_output(client, models, run_id, dst_id, src.get("output_step"))
    status = FINAL_STATUSES.get(str(src.get("status") or ""))
    if status:
        models.finalize(dst_id, status)
    models.set_tags(dst_id, {IMPORT_COMPLETE_TAG: "true"})
    return LoggedModelImport(src_id, dst_id, created=True, standin_run=standin)


def import_logged_model(client: TrackingClient, in_dir: Path, dst_run: JsonDict) -> str:
    """Recreate the logged model in `in_dir` as an output of `dst_run`; returns its id.

    The form a registered version's import uses: `dst_run` is the imported run of the version,
    which produced the model. A model an earlier import made (by any path) is reused.
    """
    src = read_logged_model(in_dir)
    experiment_id = str(dst_run["info"]["experiment_id"])
    run_map = {str(src["source_run_id"]): str(dst_run["info"]["run_id"])} if src.get("source_run_id") else {}
    done = import_logged_model_dir(client, in_dir, experiment_id, imported_runs(client, experiment_id, run_map))
    return done.dst_model_id


def _standin_run(client: TrackingClient, experiment_id: str, src_run_id: str, datasets: list[JsonDict]) -> str:
    """A finished run standing for a source run that was not imported, with its datasets (as the peer does)."""
    for run in client.search_runs([experiment_id], filter=f"tags.`{STANDIN_RUN_TAG}` = '{src_run_id}'"):
        return str(run["info"]["run_id"])
    run = client.create_run(experiment_id, tags={STANDIN_RUN_TAG: src_run_id})
    run_id = str(run["info"]["run_id"])
    if datasets:
        client.log_inputs(run_id, [{"dataset": d["dataset"], "tags": d.get("tags", [])} for d in datasets])
    client.update_run(run_id, status="FINISHED")
    return run_id


def _upload(models: lm.LoggedModels, model: JsonDict, local: Path, run_id: str | None, fix: bool) -> None:
    """Upload the files byte for byte; with `fix`, the MLmodel's ids and location name the new model."""
    store = models.artifacts(model)
    info = model["info"]
    wanted = {"run_id": run_id, "model_id": info["model_id"], "model_uuid": info["model_id"],
              "artifact_path": info["artifact_uri"]}
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        rel = path.relative_to(local).as_posix()
        if fix and rel == "MLmodel":
            text = path.read_text(encoding="utf-8")
            fixed = _MLMODEL_LINE.sub(lambda m: f"{m[1]}: {wanted[m[1]] or m[0].split(': ', 1)[1]}", text)
            if fixed != text:
                store.upload_bytes(fixed.encode("utf-8"), rel)
                continue
        store.upload_file(path, rel)


def _metrics_by_run(metrics: list[JsonDict], resolve_run: RunResolver,
                    model_run: str | None) -> dict[str, list[JsonDict]]:
    """Each point goes through the imported run that measured it, else through the model's own run.

    Planned before the model is created, so a point no imported run can carry fails the import
    before anything is written.
    """
    by_run: defaultdict[str, list[JsonDict]] = defaultdict(list)
    for m in metrics:
        src_run = str(m.get("run_id") or "")
        run_id = (resolve_run(src_run) if src_run else None) or model_run
        if run_id is None:
            raise NotFoundError(f"metric '{m.get('key')}' of the logged model was measured by run "
                                f"{src_run or '(unknown)'}, which is not imported")
        point: JsonDict = {"key": m["key"], "value": m["value"], "timestamp": int(m["timestamp"]),
                           "step": int(m.get("step") or 0)}
        point.update({k: m[k] for k in ("dataset_name", "dataset_digest") if m.get(k)})
        by_run[run_id].append(point)
    return dict(by_run)


def _link_output(client: TrackingClient, models: lm.LoggedModels, run_id: str, model_id: str, step: object) -> None:
    """Record the model as the run's output once (MLflow does not do it when a model is created)."""
    outputs = (client.get_run(run_id).get("outputs") or {}).get("model_outputs") or []
    if not any(o.get("model_id") == model_id for o in outputs):
        models.log_outputs(run_id, [{"model_id": model_id, "step": int(step) if isinstance(step, int) else 0}])
