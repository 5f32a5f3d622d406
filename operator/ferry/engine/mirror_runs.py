"""One source run brought in step with its copy on the mirror's destination.

A run the destination does not hold yet (or holds half-imported) is copied whole, as
``copy-run`` does. A copy that exists is brought in step field by field, writing only what
differs: new params, changed and removed tags, the metric points the copy lacks (appended,
never duplicated), status, end time and name, new dataset inputs, and new or changed artifact
files. A run that is already in step costs no write at all: that is what lets a sync run every
few minutes on a large server.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ferry.engine import runs
from ferry.tracking import ArtifactStore, JsonDict, TrackingClient, tags_of

# Tags the destination keeps of its own: our bookkeeping, and the parent link (remapped to the copy's parent).
OWN_TAGS = frozenset({*runs.IMPORT_TAGS, runs.ABANDONED_TAG, runs.PARENT_TAG})
# MLflow rewrites no artifact, but an import points each MLmodel at its new run: its size differs by design.
REWRITTEN_FILES = frozenset({"MLmodel"})


@dataclass(frozen=True)
class RunSync:
    """What bringing one run in step did."""

    src_run_id: str
    dst_run_id: str
    src_parent_run_id: str | None
    created: bool = False  # copied whole
    changed: bool = False  # an existing copy was written to
    metric_points: int = 0
    nbytes: int = 0

    @property
    def wrote(self) -> bool:
        return self.created or self.changed


def copy_new(src: TrackingClient, dst: TrackingClient, run: JsonDict, dst_experiment_id: str, *,
             include_artifacts: bool, scratch: Path | None = None,
             histories: Mapping[str, list[JsonDict]] | None = None) -> RunSync:
    """Copy a run the destination does not hold (or holds half-done) through a temporary directory.

    `histories` are the run's metric histories when the caller read them in bulk for many runs.
    """
    run_id = run["info"]["run_id"]
    with tempfile.TemporaryDirectory(dir=scratch, prefix="ferry-mirror-") as tmp:
        exported = runs.export_run(src, run, Path(tmp) / run_id, histories=histories,
                                   include_artifacts=include_artifacts, resume=False)
        done = runs.import_run(dst, Path(tmp) / run_id, dst_experiment_id, use_src_user_id=True,
                               resolve_parent=False, defer_delete=True)
    return RunSync(run_id, done.dst_run_id, done.src_parent_run_id, created=not done.skipped,
                   nbytes=exported.nbytes)


def bring_in_step(src: TrackingClient, dst: TrackingClient, run: JsonDict, copy: JsonDict, *,
                  include_artifacts: bool) -> RunSync:
    """Write to the copy what differs from the source run `run` (both as runs/search returns them)."""
    info, dst_info = run["info"], copy["info"]
    src_id, dst_id = info["run_id"], dst_info["run_id"]
    data, dst_data = run.get("data") or {}, copy.get("data") or {}
    src_tags, dst_tags = tags_of(data), tags_of(dst_data)
    parent = src_tags.get(runs.PARENT_TAG)
    wrote = False

    if dst_info.get("lifecycle_stage") == "deleted" and info.get("lifecycle_stage") != "deleted":
        dst.restore_run(dst_id)  # restored at the source
        wrote = True
    dst_params = {p["key"] for p in dst_data.get("params", [])}
    params = [{"key": p["key"], "value": p.get("value", "")} for p in data.get("params", [])
              if p["key"] not in dst_params]
    tags = [{"key": k, "value": v} for k, v in src_tags.items() if k not in OWN_TAGS and dst_tags.get(k) != v]
    # The copy's mlflow.user comes from the source run's user id when the source has no such tag.
    removed = [k for k in dst_tags if k not in OWN_TAGS and k != runs.USER_TAG and k not in src_tags]
    metrics = _missing_points(src, dst, run, copy)
    if params or tags or metrics:
        dst.log_batch(dst_id, params=params, tags=tags, metrics=metrics)
        wrote = True
    for key in removed:
        dst.call("POST", "runs/delete-tag", json={"run_id": dst_id, "key": key}, what=f"run '{dst_id}'")
        wrote = True
    wrote |= _log_new_inputs(dst, run, copy)
    nbytes = _upload_changed_artifacts(src, dst, info, dst_info) if include_artifacts else 0
    status, end_time, name = info.get("status"), info.get("end_time"), info.get("run_name")
    if (status, end_time, name) != (dst_info.get("status"), dst_info.get("end_time"), dst_info.get("run_name")):
        dst.update_run(dst_id, status=status, end_time=int(end_time) if end_time is not None else None,
                       run_name=name if name != dst_info.get("run_name") else None)
        wrote = True
    return RunSync(src_id, dst_id, parent, changed=wrote or bool(nbytes), metric_points=len(metrics), nbytes=nbytes)


def _missing_points(src: TrackingClient, dst: TrackingClient, run: JsonDict, copy: JsonDict) -> list[JsonDict]:
    """The metric points of `run` its copy lacks, by (step, timestamp, value), each as often as it is missing.

    Only metrics whose latest point differs between the two are read in full: MLflow keeps the
    latest point of each metric with the run, so a metric whose latest point matches has no new
    steps (a step backfilled below the latest one is found by the full comparison).
    """
    latest = {m["key"]: _point(m) for m in (copy.get("data") or {}).get("metrics", [])}
    points: list[JsonDict] = []
    for metric in (run.get("data") or {}).get("metrics", []):
        key = metric["key"]
        if latest.get(key) == _point(metric):
            continue
        have = Counter(_point(p) for p in dst.get_metric_history(copy["info"]["run_id"], key)) if key in latest \
            else Counter()
        for point in src.get_metric_history(run["info"]["run_id"], key):
            ident = _point(point)
            if have[ident]:
                have[ident] -= 1
                continue
            points.append({"key": key, "value": point.get("value", 0.0), "timestamp": int(point.get("timestamp", 0)),
                           "step": int(point.get("step", 0))})
    return points


def _point(p: JsonDict) -> tuple[int, int, str]:
    # Values compared as text: NaN equals NaN, and the JSON float is what both servers send.
    return int(p.get("step", 0)), int(p.get("timestamp", 0)), str(p.get("value"))


def _log_new_inputs(dst: TrackingClient, run: JsonDict, copy: JsonDict) -> bool:
    def key(d: JsonDict) -> tuple[str, str]:
        return str(d.get("dataset", {}).get("name")), str(d.get("dataset", {}).get("digest"))

    have = {key(d) for d in (copy.get("inputs") or {}).get("dataset_inputs", [])}
    new = [{"dataset": d["dataset"], "tags": d.get("tags", [])}
           for d in (run.get("inputs") or {}).get("dataset_inputs", []) if key(d) not in have]
    if new:
        dst.log_inputs(copy["info"]["run_id"], new)
    return bool(new)


def _upload_changed_artifacts(src: TrackingClient, dst: TrackingClient, info: JsonDict, dst_info: JsonDict) -> int:
    """Files of the source run the copy lacks, or holds with another size; returns the bytes sent."""
    source, target = ArtifactStore(src, info["artifact_uri"]), ArtifactStore(dst, dst_info["artifact_uri"])
    have = {f.path: f.file_size for f in target.walk()}
    nbytes = 0
    with tempfile.TemporaryDirectory(prefix="ferry-mirror-files-") as tmp:
        for item in source.walk():
            known = item.path in have
            if known and (have[item.path] == item.file_size or Path(item.path).name in REWRITTEN_FILES):
                continue
            local = Path(tmp) / "f"
            source.download_file(item.path, local)
            nbytes += target.upload_file(local, item.path)
    return nbytes
