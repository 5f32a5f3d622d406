"""Export and import of one run, in mlflow-export-import's run directory format.

A run directory is ``run.json`` plus ``artifacts/``. Export writes the artifacts first and
``run.json`` last (atomically), so ``run.json`` is the run's completion marker and a rerun skips
finished runs. Import records the source run on the destination run (`SOURCE_RUN_ID_TAG`,
`SOURCE_URI_TAG`) and sets `IMPORT_COMPLETE_TAG` last: an import of the same run again finds the
finished copy and creates nothing; a copy left half-done by a killed import is replaced.
"""

from __future__ import annotations

import getpass
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferry.engine.files import fmt_ts_millis, read_export_file, write_export_file
from ferry.engine.workspace_objects import WorkspaceExport, WorkspaceImport
from ferry.errors import InputError
from ferry.storage import spool
from ferry.tracking import ArtifactStore, JsonDict, TrackingClient, tags_of

SOURCE_RUN_ID_TAG = "ferry.source.run_id"
SOURCE_URI_TAG = "ferry.source.uri"
IMPORT_COMPLETE_TAG = "ferry.import.complete"
# A half-imported copy that a rerun replaced. MLflow's API can only soft-delete a run, so the copy
# stays in the deleted view; this tag says it is ours and not data, and every export skips it.
ABANDONED_TAG = "ferry.import.abandoned"
IMPORT_TAGS = (SOURCE_RUN_ID_TAG, SOURCE_URI_TAG, IMPORT_COMPLETE_TAG)
PARENT_TAG = "mlflow.parentRunId"
USER_TAG = "mlflow.user"
EXIM_PREFIX = "mlflow_exim"
RUN_JSON = "run.json"
INFO_FIELDS = ("run_id", "experiment_id", "user_id", "status", "start_time", "end_time", "lifecycle_stage",
               "artifact_uri", "run_name")
_MLMODEL_RUN_ID = re.compile(r"^run_id:.*$", re.MULTILINE)


@dataclass(frozen=True)
class RunExport:
    run_id: str
    path: Path
    nbytes: int = 0
    skipped: bool = False  # already exported by an earlier, interrupted export


@dataclass(frozen=True)
class RunImport:
    src_run_id: str
    dst_run_id: str
    src_parent_run_id: str | None
    skipped: bool = False  # the destination already held a finished copy
    delete_pending: bool = False  # deleted at the source; the caller deletes it after linking parents


# -- export ----------------------------------------------------------------------------------------


def is_exported(run_dir: Path) -> bool:
    """Finished here, or finished and moved to the export's destination (`ferry.storage.spool`)."""
    return (run_dir / RUN_JSON).is_file() or spool.current().holds(run_dir)


def export_run(client: TrackingClient, run: str | JsonDict, out_dir: Path, *,
               histories: Mapping[str, list[JsonDict]] | None = None, include_artifacts: bool = True,
               resume: bool = True, workspace: WorkspaceExport | None = None) -> RunExport:
    """Write one run to `out_dir` (``run.json`` + ``artifacts/``).

    `run` is a run id or a run as runs/get or runs/search return it (the experiment export
    passes pages of runs/search, so no extra get per run). `histories` maps each metric key to
    every point, when the caller already fetched them in bulk; missing keys are fetched here.
    With `workspace`, the run's Databricks notebook goes under ``artifacts/notebooks/`` before
    ``run.json`` marks the run complete.
    """
    if resume and is_exported(out_dir):
        return RunExport(run if isinstance(run, str) else run["info"]["run_id"], out_dir, skipped=True)
    if isinstance(run, str):
        run = client.get_run(run)
    info = run["info"]
    run_id = info["run_id"]
    nbytes = 0
    if include_artifacts:
        store = ArtifactStore(client, info["artifact_uri"])
        _, nbytes = store.download_tree(out_dir / "artifacts")
    if workspace is not None:
        workspace.export_notebook(run, out_dir)
    histories = dict(histories or {})
    for key in {m["key"] for m in run.get("data", {}).get("metrics", [])} - set(histories):
        histories[key] = list(client.get_metric_history(run_id, key))
    write_export_file(out_dir, RUN_JSON, script="export_run.py", tracking_uri=client.uri,
                      mlflow=run_document(run, histories), compact=True)
    spool.current().finished(out_dir)  # complete: the export's destination may take it now
    return RunExport(run_id, out_dir, nbytes)


def run_document(run: JsonDict, histories: Mapping[str, list[JsonDict]]) -> JsonDict:
    """The ``mlflow`` section of run.json, as mlflow-export-import 1.2 writes it."""
    info = {k: run["info"].get(k) for k in INFO_FIELDS}
    info["_start_time"] = fmt_ts_millis(info["start_time"])
    info["_end_time"] = fmt_ts_millis(info["end_time"])
    data = run.get("data", {})
    inputs = run.get("inputs", {}) or {}
    doc: JsonDict = {
        "info": info,
        "params": {p["key"]: p.get("value", "") for p in data.get("params", [])},
        "metrics": {key: [_point(p) for p in points] for key, points in sorted(histories.items())},
        "tags": dict(sorted(tags_of(data).items())),
        "inputs": {
            "dataset_inputs": [{"dataset": d.get("dataset", {}), "tags": d.get("tags", [])}
                               for d in inputs.get("dataset_inputs", [])],
            "model_inputs": list(inputs.get("model_inputs", [])),
        },
        "outputs": {"model_outputs": list((run.get("outputs") or {}).get("model_outputs", []))},
    }
    return doc


def _point(p: JsonDict) -> JsonDict:
    point = {"value": p.get("value", 0.0), "timestamp": int(p.get("timestamp", 0)), "step": int(p.get("step", 0))}
    point.update({k: v for k, v in p.items() if k in ("model_id", "dataset_name", "dataset_digest") and v})
    return point


# -- import ----------------------------------------------------------------------------------------


def read_run(run_dir: Path) -> JsonDict:
    """The run.json document of a run directory; `InputError` when it is not one."""
    doc = read_export_file(run_dir / RUN_JSON, "an exported run")
    mlflow = doc["mlflow"]
    if not isinstance(mlflow.get("info"), dict) or "run_id" not in mlflow["info"]:
        raise InputError(f"{run_dir / RUN_JSON} is corrupt: no 'info.run_id'")
    return doc


def find_imported(client: TrackingClient, experiment_id: str, src_run_id: str,
                  src_uri: str | None = None) -> list[JsonDict]:
    """Destination runs (any lifecycle) that were imported from `src_run_id`."""
    found = client.search_runs([experiment_id], filter=f"tags.`{SOURCE_RUN_ID_TAG}` = '{src_run_id}'",
                               run_view_type="ALL")
    return [r for r in found if src_uri is None or tags_of(r["data"]).get(SOURCE_URI_TAG, src_uri) == src_uri]


ImportedIndex = Mapping[str, list[JsonDict]]


def imported_index(client: TrackingClient, experiment_id: str) -> ImportedIndex:
    """Every run of the experiment that was imported by us, by source run id.

    One paged search for a whole experiment import instead of one search per run; only what the
    idempotency check reads is kept (run id, lifecycle stage and our tags), so an experiment of
    many runs stays small in memory.
    """
    index: dict[str, list[JsonDict]] = defaultdict(list)
    ours = (SOURCE_RUN_ID_TAG, SOURCE_URI_TAG, IMPORT_COMPLETE_TAG)
    for run in client.search_runs([experiment_id], filter=f"tags.`{SOURCE_RUN_ID_TAG}` LIKE '%'",
                                  run_view_type="ALL"):
        tags = tags_of(run["data"])
        if tags.get(SOURCE_RUN_ID_TAG):
            index[tags[SOURCE_RUN_ID_TAG]].append({
                "info": {k: run["info"].get(k) for k in ("run_id", "lifecycle_stage")},
                "data": {"tags": [{"key": k, "value": tags[k]} for k in ours if k in tags]},
            })
    return index


def import_run(client: TrackingClient, run_dir: Path, experiment_id: str, *, import_source_tags: bool = False,
               use_src_user_id: bool = False, mlmodel_fix: bool = True,
               parent_map: Mapping[str, str] | None = None, resolve_parent: bool = True,
               defer_delete: bool = False, known: ImportedIndex | None = None,
               workspace: WorkspaceImport | None = None) -> RunImport:
    """Import the run in `run_dir` into experiment `experiment_id`; idempotent.

    `parent_map` maps source run ids to destination run ids already known (an experiment
    import); with `resolve_parent`, a parent not in it is looked up in the destination
    experiment by its source-id tag. When the parent is not imported (yet), the run is imported
    without ``mlflow.parentRunId``; `link_parent` sets it later. `known` is an `imported_index`
    of the destination experiment taken before this import started (saves a search per run).
    With `workspace`, the run's exported notebook is imported into the destination workspace, also
    when the run itself was imported before (a rerun with ``--dst-notebook-dir`` adds it).
    """
    doc = read_run(run_dir)
    src = doc["mlflow"]
    src_uri = str(doc.get("system", {}).get("mlflow_tracking_uri", ""))
    info = src["info"]
    src_run_id = str(info["run_id"])
    src_tags: dict[str, str] = {k: str(v) for k, v in (src.get("tags") or {}).items()}
    src_parent = src_tags.get(PARENT_TAG)

    if known is None:
        previous = find_imported(client, experiment_id, src_run_id, src_uri)
    else:
        previous = [r for r in known.get(src_run_id, [])
                    if tags_of(r["data"]).get(SOURCE_URI_TAG, src_uri) == src_uri]
    for existing in previous:
        if tags_of(existing["data"]).get(IMPORT_COMPLETE_TAG) == "true":
            dst_id = existing["info"]["run_id"]
            pending = _source_deleted(info) and existing["info"].get("lifecycle_stage") != "deleted"
            if pending and not defer_delete:
                client.delete_run(dst_id)
            if workspace is not None and workspace.notebook_dir:
                with spool.current().borrowed(run_dir):
                    workspace.import_notebook(run_dir, src)
            return RunImport(src_run_id, dst_id, src_parent, skipped=True, delete_pending=pending and defer_delete)
        _discard(client, existing)

    user_id = str(info.get("user_id") or "") if use_src_user_id else _local_user()
    start_time = info.get("start_time")
    dst = client.create_run(experiment_id, start_time=int(start_time) if start_time is not None else None,
                            run_name=info.get("run_name") or src_tags.get("mlflow.runName"),
                            tags={SOURCE_RUN_ID_TAG: src_run_id, SOURCE_URI_TAG: src_uri}, user_id=user_id)
    dst_id = dst["info"]["run_id"]

    tags = _destination_tags(src_tags, info, import_source_tags, user_id)
    dst_parent = _resolve_parent(client, experiment_id, src_parent, parent_map, resolve_parent)
    if dst_parent:
        tags[PARENT_TAG] = dst_parent
    client.log_batch(
        dst_id,
        params=[{"key": k, "value": str(v)} for k, v in (src.get("params") or {}).items()],
        tags=[{"key": k, "value": v} for k, v in tags.items()],
        metrics=[{"key": key, "value": p["value"], "timestamp": int(p["timestamp"]), "step": int(p.get("step", 0))}
                 for key, points in (src.get("metrics") or {}).items() for p in points],
    )
    datasets = (src.get("inputs") or {}).get("dataset_inputs") or []
    if datasets:
        # Runs imported at once may log the same new dataset at once; `log_inputs` sends the
        # request that lost that race again, so the workers need not take turns here.
        client.log_inputs(dst_id, [{"dataset": d["dataset"], "tags": d.get("tags", [])} for d in datasets])
    artifacts = run_dir / "artifacts"
    with spool.current().borrowed(run_dir):  # an export in a bucket: its artifacts arrive now
        if artifacts.is_dir():
            _upload_artifacts(client, dst["info"]["artifact_uri"], artifacts, dst_id if mlmodel_fix else None)
        if workspace is not None:
            workspace.import_notebook(run_dir, src)

    status = str(info.get("status") or "FINISHED")
    end_time = info.get("end_time")
    client.update_run(dst_id, status=status, end_time=int(end_time) if end_time is not None else None)
    client.set_tag(dst_id, IMPORT_COMPLETE_TAG, "true")
    if _source_deleted(info) and not defer_delete:
        client.delete_run(dst_id)
    return RunImport(src_run_id, dst_id, src_parent, delete_pending=_source_deleted(info) and defer_delete)


def link_parent(client: TrackingClient, dst_run_id: str, dst_parent_run_id: str) -> None:
    """Point a destination run at its (remapped) parent."""
    client.set_tag(dst_run_id, PARENT_TAG, dst_parent_run_id)


def _destination_tags(src_tags: Mapping[str, str], info: Mapping[str, Any], import_source_tags: bool,
                      user_id: str) -> dict[str, str]:
    tags = {k: v for k, v in src_tags.items() if k not in IMPORT_TAGS and k != PARENT_TAG}
    if import_source_tags:
        # The peer's source tags: every mlflow.* tag and every info field under mlflow_exim.*
        tags.update({f"{EXIM_PREFIX}.mlflow_tag.{k.removeprefix('mlflow.')}": v
                     for k, v in src_tags.items() if k.startswith("mlflow.")})
        tags.update({f"{EXIM_PREFIX}.run_info.{k}": str(v) for k, v in info.items()})
    tags[USER_TAG] = user_id
    return tags


def _resolve_parent(client: TrackingClient, experiment_id: str, src_parent: str | None,
                    parent_map: Mapping[str, str] | None, resolve: bool) -> str | None:
    if not src_parent:
        return None
    if parent_map and src_parent in parent_map:
        return parent_map[src_parent]
    if not resolve:
        return None
    for candidate in find_imported(client, experiment_id, src_parent):
        return str(candidate["info"]["run_id"])
    return None


def _upload_artifacts(client: TrackingClient, artifact_uri: str, local: Path, mlmodel_run_id: str | None) -> None:
    """Upload a run's artifacts; with `mlmodel_run_id`, each MLmodel names its new run.

    The rewrite happens on the way up (one line replaced, the rest byte-equal), instead of the
    peer's download-edit-upload after the fact.
    """
    store = ArtifactStore(client, artifact_uri)
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        rel = path.relative_to(local).as_posix()
        if mlmodel_run_id and path.name == "MLmodel":
            text = path.read_text(encoding="utf-8")
            fixed = _MLMODEL_RUN_ID.sub(f"run_id: {mlmodel_run_id}", text)
            if fixed != text:
                store.upload_bytes(fixed.encode("utf-8"), rel)
                continue
        store.upload_file(path, rel)


def _source_deleted(info: Mapping[str, Any]) -> bool:
    return info.get("lifecycle_stage") == "deleted"


def _discard(client: TrackingClient, partial: JsonDict) -> None:
    """Retire a half-imported copy: mark it abandoned, then delete it.

    It keeps its source tag, so a rerun killed between the two steps finds it again and finishes
    the job; once deleted it is skipped by the idempotency check and by every export of ours.
    """
    run_id = partial["info"]["run_id"]
    if partial["info"].get("lifecycle_stage") != "deleted":  # MLflow only tags active runs
        client.set_tag(run_id, ABANDONED_TAG, "true")
        client.delete_run(run_id)


def abandoned(run: JsonDict) -> bool:
    """A half-imported copy a rerun replaced (see `ABANDONED_TAG`): not the user's data."""
    return tags_of(run.get("data") or {}).get(ABANDONED_TAG) == "true"


def _local_user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def parents_to_link(imports: Sequence[RunImport], parent_map: Mapping[str, str]) -> list[tuple[str, str]]:
    """(destination run, destination parent) pairs for runs whose parent is in `parent_map`."""
    return [(r.dst_run_id, parent_map[r.src_parent_run_id]) for r in imports
            if r.src_parent_run_id and r.src_parent_run_id in parent_map]
