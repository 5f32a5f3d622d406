"""Export and import of one experiment (many at once, in the peer's bulk layout: `ferry.engine.experiments_bulk`).

Export streams: runs come from paged runs/search, are handled in slices of `SLICE` runs (their
metric histories fetched in bulk, one request per metric key per slice), and each slice is
exported by a bounded thread pool before the next page is read. Memory stays flat in the number
of runs; only run ids are kept for ``experiment.json``, which is written last.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ferry.engine import experiment_objects
from ferry.engine import runs as run_engine
from ferry.engine.files import fmt_ts_millis, read_export_file, write_export_file
from ferry.engine.workspace_objects import PERMISSIONS, WorkspaceExport, WorkspaceImport
from ferry.errors import FerryError, InputError, NotFoundError, UsageError
from ferry.outcome import Counts, Outcome
from ferry.progress import Tracker
from ferry.tracking import JsonDict, TrackingClient, tags_of

EXPERIMENT_JSON = "experiment.json"
SLICE = 100  # runs per bulk metric-history request (the server's cap)


@dataclass
class ExperimentExport:
    experiment_id: str
    name: str
    path: Path
    ok_runs: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "run <id>: <reason>"
    failed_run_ids: list[str] = field(default_factory=list)
    skipped_runs: int = 0
    nbytes: int = 0
    objects: list[Outcome] = field(default_factory=list)  # its logged models and traces

    @property
    def counts(self) -> Counts:
        return sum((o.counts for o in self.objects), Counts(experiments=1, runs=len(self.ok_runs), bytes=self.nbytes))

    def outcome(self, message: str | None = None) -> Outcome:
        """Done when something besides the experiment itself was exported (a run, a logged model, a trace)."""
        return Outcome.of(self.counts, self.failed, message=message, path=str(self.path),
                          done=self.counts.objects - 1)


@dataclass
class ExperimentImport:
    experiment_id: str
    name: str
    runs: list[run_engine.RunImport] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    objects: list[Outcome] = field(default_factory=list)  # its logged models and traces

    @property
    def counts(self) -> Counts:
        return sum((o.counts for o in self.objects), Counts(experiments=1, runs=len(self.runs)))

    def outcome(self, message: str | None = None) -> Outcome:
        """Done when something besides the experiment itself was imported (a run, a logged model, a trace)."""
        return Outcome.of(self.counts, self.failed, message=message, done=self.counts.objects - 1)


# -- export ----------------------------------------------------------------------------------------


def parse_run_start_time(value: str | int | None, flag: str = "--run-start-time") -> int | None:
    """``YYYY-MM-DD`` or ``YYYY-MM-DD HH:MM:SS`` (UTC), or epoch milliseconds, as milliseconds.

    `flag` names the option in the one-line error (the same format serves ``--traces-since``).
    """
    if value is None or value == "":
        return None
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    try:
        dt = datetime.fromisoformat(str(value))
    except ValueError:
        raise UsageError(f"{flag} '{value}' is not YYYY-MM-DD or YYYY-MM-DD HH:MM:SS") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def run_window(run_start_time: str | int | None, runs_until: str | int | None) -> str | None:
    """The runs/search filter of the peer's time window: started at or after the start, before the end."""
    start_ms = parse_run_start_time(run_start_time)
    until_ms = parse_run_start_time(runs_until, "--runs-until")
    bounds = ([f"attributes.start_time >= {start_ms}"] if start_ms else []) + \
        ([f"attributes.start_time < {until_ms}"] if until_ms else [])
    return " AND ".join(bounds) or None


def export_experiment(client: TrackingClient, experiment: str, out_dir: Path, *,
                      run_ids: Sequence[str] | None = None, run_start_time: str | int | None = None,
                      runs_until: str | int | None = None,
                      export_deleted_runs: bool = False, check_nested_runs: bool = False,
                      include_artifacts: bool = True, workers: int = 4,
                      tracker: Tracker | None = None, include_logged_models: bool = True,
                      include_traces: bool = True, traces_since: int | None = None,
                      workspace: WorkspaceExport | None = None) -> ExperimentExport:
    """Export experiment `experiment` (name or id) to `out_dir`: experiment.json + runs/<id>/, and
    its MLflow 3 objects (logged models, traces) beside them (`ferry.engine.experiment_objects`).

    Without `run_ids`, the runs started in ``[run_start_time, runs_until)`` (either end open when unset).
    With `workspace` (a Databricks workspace), the runs' notebooks and the experiment's permissions too.
    """
    window = run_window(run_start_time, runs_until)
    exp = client.find_experiment(experiment)
    exp_id = str(exp["experiment_id"])
    result = ExperimentExport(exp_id, exp["name"], out_dir)
    tracker = tracker or Tracker()
    view = "ALL" if export_deleted_runs else "ACTIVE_ONLY"
    if run_ids:
        selected = _selected_runs(client, exp_id, run_ids, check_nested_runs, result)
    else:
        selected = client.search_runs([exp_id], filter=window, run_view_type=view)
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="export") as pool:
        for page in _slices(selected, SLICE):
            if not export_deleted_runs:
                page = [r for r in page if r["info"].get("lifecycle_stage") != "deleted"]
            page = [r for r in page if not run_engine.abandoned(r)]
            tracker.add_total(len(page))
            _export_slice(client, page, out_dir / "runs", include_artifacts, pool, tracker, result, workspace)
    result.objects = experiment_objects.export_objects_of(
        client, exp_id, out_dir, run_ids=result.ok_runs if run_ids else None,
        include_logged_models=include_logged_models, include_traces=include_traces, traces_since=traces_since)
    result.failed += [f for part in result.objects for f in part.failed]
    mlflow: JsonDict = {"experiment": experiment_document(exp), "runs": result.ok_runs}
    permissions = workspace.experiment_permissions(exp_id, exp["name"]) if workspace is not None else None
    if permissions is not None:
        mlflow[PERMISSIONS] = permissions
    write_export_file(out_dir, EXPERIMENT_JSON, script="export_experiment.py", tracking_uri=client.uri,
                      mlflow=mlflow,
                      info={"num_total_runs": len(result.ok_runs) + len(result.failed_run_ids),
                            "num_ok_runs": len(result.ok_runs), "num_failed_runs": len(result.failed_run_ids),
                            "failed_runs": result.failed_run_ids})
    return result


def experiment_document(exp: JsonDict) -> JsonDict:
    doc = {k: exp.get(k) for k in ("experiment_id", "name", "artifact_location", "lifecycle_stage",
                                   "creation_time", "last_update_time")}
    doc["tags"] = dict(sorted(tags_of(exp).items()))
    doc["_creation_time"] = fmt_ts_millis(exp.get("creation_time"))
    doc["_last_update_time"] = fmt_ts_millis(exp.get("last_update_time"))
    return doc


def _export_slice(client: TrackingClient, page: list[JsonDict], runs_dir: Path, include_artifacts: bool,
                  pool: ThreadPoolExecutor, tracker: Tracker, result: ExperimentExport,
                  workspace: WorkspaceExport | None = None) -> None:
    todo = [r for r in page if not run_engine.is_exported(runs_dir / r["info"]["run_id"])]
    for run in page:
        if run not in todo:
            result.ok_runs.append(run["info"]["run_id"])
            result.skipped_runs += 1
            tracker.advance()
    ids_by_key: dict[str, list[str]] = {}
    for run in todo:
        for metric in run.get("data", {}).get("metrics", []):
            ids_by_key.setdefault(metric["key"], []).append(run["info"]["run_id"])
    keys = sorted(ids_by_key)
    histories: dict[str, dict[str, list[JsonDict]]] = {r["info"]["run_id"]: {} for r in todo}
    for key, per_run in zip(keys, pool.map(lambda k: client.get_metric_histories(ids_by_key[k], k), keys),
                            strict=True):
        for run_id, points in per_run.items():
            if points:
                histories[run_id][key] = points

    def one(run: JsonDict) -> tuple[str, run_engine.RunExport | FerryError | Exception]:
        run_id = run["info"]["run_id"]
        try:
            return run_id, run_engine.export_run(client, run, runs_dir / run_id, histories=histories[run_id],
                                                 include_artifacts=include_artifacts, resume=False,
                                                 workspace=workspace)
        except Exception as err:  # one bad run does not stop the others; it is listed
            return run_id, err

    for run_id, outcome in pool.map(one, todo):
        if isinstance(outcome, Exception):
            result.failed_run_ids.append(run_id)
            result.failed.append(f"run {run_id}: {_reason(outcome)}")
            tracker.fail()
        else:
            result.ok_runs.append(run_id)
            result.nbytes += outcome.nbytes
            tracker.advance()


def _selected_runs(client: TrackingClient, exp_id: str, run_ids: Sequence[str], nested: bool,
                   result: ExperimentExport) -> Iterator[JsonDict]:
    seen: set[str] = set()
    for run_id in run_ids:
        try:
            run = client.get_run(run_id)
        except NotFoundError as err:
            result.failed_run_ids.append(run_id)
            result.failed.append(f"run {run_id}: {err.message}")
            continue
        if str(run["info"]["experiment_id"]) != exp_id:
            result.failed_run_ids.append(run_id)
            result.failed.append(f"run {run_id}: belongs to experiment {run['info']['experiment_id']}, not {exp_id}")
            continue
        family = [run, *(descendants(client, exp_id, run_id) if nested else [])]
        for member in family:
            if member["info"]["run_id"] not in seen:
                seen.add(member["info"]["run_id"])
                yield member


def descendants(client: TrackingClient, exp_id: str, run_id: str) -> Iterator[JsonDict]:
    """The nested runs under `run_id`, children before grandchildren."""
    for child in client.search_runs([exp_id], filter=f"tags.`mlflow.parentRunId` = '{run_id}'"):
        yield child
        yield from descendants(client, exp_id, child["info"]["run_id"])


def _slices(items: Iterable[JsonDict], size: int) -> Iterator[list[JsonDict]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _reason(err: Exception) -> str:
    if isinstance(err, FerryError):
        return err.message
    return f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"


# -- import ----------------------------------------------------------------------------------------


def read_experiment(in_dir: Path) -> JsonDict:
    doc = read_export_file(in_dir / EXPERIMENT_JSON, "an exported experiment")
    if not isinstance(doc["mlflow"].get("experiment"), dict):
        raise InputError(f"{in_dir / EXPERIMENT_JSON} is corrupt: no 'experiment' section")
    return doc


def run_dir_of(in_dir: Path, run_id: str) -> Path:
    """``runs/<id>`` (current layout) or ``<id>`` (mlflow-export-import before 1.2)."""
    current = in_dir / "runs" / run_id
    return current if current.is_dir() else in_dir / run_id


def import_experiment(client: TrackingClient, in_dir: Path, experiment_name: str | None = None, *,
                      import_source_tags: bool = False, use_src_user_id: bool = False, mlmodel_fix: bool = True,
                      workers: int = 4, tracker: Tracker | None = None,
                      workspace: WorkspaceImport | None = None) -> ExperimentImport:
    """Import the experiment in `in_dir` (as `experiment_name`, default its own name); idempotent.

    With `workspace` (a Databricks workspace), the exported permissions, entry by entry (every time:
    a rerun adds what an earlier one could not), and the runs' notebooks.
    """
    doc = read_experiment(in_dir)
    src_exp = doc["mlflow"]["experiment"]
    name = experiment_name or src_exp.get("name")
    if not name:
        raise UsageError("no experiment name given and the export has none")
    tags = _experiment_tags(src_exp, import_source_tags)
    exp = client.get_or_create_experiment(name, tags=tags)
    result = ExperimentImport(str(exp["experiment_id"]), name)
    if workspace is not None:
        workspace.experiment_permissions(doc["mlflow"].get(PERMISSIONS), result.experiment_id, name)
    run_ids = [str(r) for r in doc["mlflow"].get("runs", [])]
    tracker = tracker or Tracker()
    tracker.add_total(len(run_ids))
    known = run_engine.imported_index(client, result.experiment_id)

    def one(run_id: str) -> run_engine.RunImport | Exception:
        try:
            return run_engine.import_run(client, run_dir_of(in_dir, run_id), result.experiment_id,
                                         import_source_tags=import_source_tags, use_src_user_id=use_src_user_id,
                                         mlmodel_fix=mlmodel_fix, resolve_parent=False, defer_delete=True,
                                         known=known, workspace=workspace)
        except Exception as err:
            return err

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="import") as pool:
        for run_id, outcome in zip(run_ids, pool.map(one, run_ids), strict=True):
            if isinstance(outcome, Exception):
                result.failed.append(f"run {run_id}: {_reason(outcome)}")
                tracker.fail()
            else:
                result.runs.append(outcome)
                tracker.advance()
    run_map = {r.src_run_id: r.dst_run_id for r in result.runs}  # before deleting runs deleted at the source
    result.objects = experiment_objects.import_objects_of(client, in_dir, result.experiment_id, name, run_map,
                                                          mlmodel_fix=mlmodel_fix)
    result.failed += [f for part in result.objects for f in part.failed]
    finish_links(client, result.runs)
    return result


def finish_links(client: TrackingClient, imported: Sequence[run_engine.RunImport]) -> None:
    """Remap ``mlflow.parentRunId`` among the imported runs, then delete the runs deleted at the source."""
    parent_map = {r.src_run_id: r.dst_run_id for r in imported}
    for dst_run_id, dst_parent in run_engine.parents_to_link(imported, parent_map):
        run_engine.link_parent(client, dst_run_id, dst_parent)
    for r in imported:
        if r.delete_pending:
            client.delete_run(r.dst_run_id)


def _experiment_tags(src_exp: Mapping[str, Any], import_source_tags: bool) -> dict[str, str]:
    raw = src_exp.get("tags") or {}
    tags = {t["key"]: str(t.get("value", "")) for t in raw} if isinstance(raw, list) else {
        k: str(v) for k, v in raw.items()}
    if import_source_tags:
        tags.update({f"{run_engine.EXIM_PREFIX}.mlflow_tag.{k.removeprefix('mlflow.')}": v
                     for k, v in tags.items() if k.startswith("mlflow.")})
        tags.update({f"{run_engine.EXIM_PREFIX}.field.{k}": str(v) for k, v in src_exp.items()
                     if k != "tags" and not k.startswith("_")})
    return tags
