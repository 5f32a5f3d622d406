"""The records kiroframe-importer 0.0.10 writes and sends, built from MLflow's REST answers.

Field names and their order follow the original exactly (Kiroframe parses these lines), so each
builder lists its keys literally rather than deriving them. Inputs are the JSON objects of
MLflow's REST API (``runs/search``, ``experiments/search``, ``registered-models/search``), which
carry lists of ``{key, value}`` where the Python client has dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

JsonDict = dict[str, Any]

CONTEXT_TAG = "mlflow.data.context"
RUN_NAME_TAG = "mlflow.runName"
RUN_STATUSES = ("FINISHED", "FAILED", "SCHEDULED", "RUNNING", "KILLED")


def ms_to_iso_utc(ms: int | None) -> str | None:
    """Milliseconds since the epoch as ISO 8601 UTC with a ``Z``, the original's format."""
    if ms is None:
        return None
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return None


def key_values(items: Iterable[Mapping[str, Any]] | None) -> dict[str, Any]:
    """MLflow's REST ``[{key, value}]`` as the ``{key: value}`` the Python client shows."""
    return {item["key"]: item.get("value") for item in items or ()}


def _ms(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


@dataclass(frozen=True)
class RunView:
    """One run of ``runs/search``, with its parts in the shapes the records need."""

    info: JsonDict
    tags: dict[str, Any]
    params: dict[str, Any]
    metrics: dict[str, Any]
    dataset_inputs: list[JsonDict]

    @classmethod
    def of(cls, run: JsonDict) -> RunView:
        data = run.get("data") or {}
        return cls(
            info=run.get("info") or {},
            tags=key_values(data.get("tags")),
            params=key_values(data.get("params")),
            metrics=key_values(data.get("metrics")),
            dataset_inputs=list((run.get("inputs") or {}).get("dataset_inputs") or ()),
        )

    @property
    def run_id(self) -> str:
        return str(self.info.get("run_id") or self.info.get("run_uuid"))

    @property
    def status(self) -> str:
        return str(self.info.get("status", ""))

    @property
    def start_time(self) -> int | None:
        return _ms(self.info.get("start_time"))

    @property
    def end_time(self) -> int | None:
        return _ms(self.info.get("end_time"))

    @property
    def dataset_names(self) -> list[str]:
        return [name for d in self.dataset_inputs if (name := (d.get("dataset") or {}).get("name"))]

    def changed_since(self, watermark: int) -> bool:
        """Whether an incremental sync from `watermark` must send this run again."""
        start, end = self.start_time, self.end_time
        return (self.status == "RUNNING" or (start is not None and start >= watermark)
                or (end is not None and end >= watermark))


def _context(dataset_input: JsonDict) -> str | None:
    return key_values(dataset_input.get("tags")).get(CONTEXT_TAG)


def run_row(exp: JsonDict, run: RunView, history: dict[str, Any], *, schema_profile: bool) -> JsonDict:
    """A line of runs.json, also the ``line`` of an import_type 2 request."""
    datasets = []
    for di in run.dataset_inputs:
        ds = di.get("dataset") or {}
        item = {
            "name": ds.get("name"),
            "digest": ds.get("digest"),
            "context": _context(di),
            "source_type": ds.get("source_type"),
            "source": ds.get("source"),
        }
        if schema_profile:
            item["schema"] = ds.get("schema")
            item["profile"] = ds.get("profile")
        datasets.append(item)
    return {
        "experiment_name": exp["name"],
        "experiment_id": exp["experiment_id"],
        "run_id": run.run_id,
        "status": run.status,
        "lifecycle_stage": run.info.get("lifecycle_stage"),
        "start_time": run.start_time,
        "end_time": run.end_time,
        "start_time_iso": ms_to_iso_utc(run.start_time),
        "end_time_iso": ms_to_iso_utc(run.end_time),
        "tags": run.tags,
        "params": run.params,
        "metrics_latest": run.metrics,
        "metrics_history": history,
        "datasets": datasets,
        "dataset_names": run.dataset_names,
    }


def dataset_rows(exp: JsonDict, run: RunView, *, schema_profile: bool) -> list[JsonDict]:
    """Lines of experiments_runs_datasets.json: one per dataset input, or one empty row."""
    head = {
        "experiment_id": exp["experiment_id"],
        "experiment_name": exp["name"],
        "run_id": run.run_id,
        "run_name": run.tags.get(RUN_NAME_TAG),
        "status": run.status,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "start_time_iso": ms_to_iso_utc(run.start_time),
        "end_time_iso": ms_to_iso_utc(run.end_time),
    }
    rows = []
    for di in run.dataset_inputs:
        ds = di.get("dataset") or {}
        context = _context(di)
        row = {
            **head,
            "dataset_name": ds.get("name"),
            "dataset_digest": ds.get("digest"),
            "dataset_context": context,
            "dataset_source_type": ds.get("source_type"),
            "dataset_source": ds.get("source"),
            "dataset_role": "produced" if context == "output" else "used",
            "dataset_id": f"{ds.get('name') or 'ds'}:{(ds.get('digest') or '')[:8]}",
        }
        if schema_profile:
            row["dataset_schema"] = ds.get("schema")
            row["dataset_profile"] = ds.get("profile")
        rows.append(row)
    if not rows:
        # The original's row for a run without inputs has no role or id: keep its shape.
        row = {**head, "dataset_name": None, "dataset_digest": None, "dataset_context": None,
               "dataset_source_type": None, "dataset_source": None}
        if schema_profile:
            row["dataset_schema"] = None
            row["dataset_profile"] = None
        rows.append(row)
    return rows


@dataclass
class ExperimentTally:
    """What experiment_summary.json says of an experiment, gathered run by run (sets of keys only)."""

    runs_total: int = 0
    status_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RUN_STATUSES, 0))
    first_start: int | None = None
    last_end: int | None = None
    metrics: set[str] = field(default_factory=set)
    params: set[str] = field(default_factory=set)
    tag_keys: set[str] = field(default_factory=set)
    dataset_names: set[str] = field(default_factory=set)

    def add(self, run: RunView) -> None:
        self.runs_total += 1
        self.status_counts[run.status] = self.status_counts.get(run.status, 0) + 1
        if run.start_time is not None:
            self.first_start = run.start_time if self.first_start is None else min(self.first_start, run.start_time)
        if run.end_time is not None:
            self.last_end = run.end_time if self.last_end is None else max(self.last_end, run.end_time)
        self.metrics.update(run.metrics)
        self.params.update(run.params)
        self.tag_keys.update(run.tags)
        self.dataset_names.update(run.dataset_names)

    def summary_row(self, exp: JsonDict) -> JsonDict:
        """A line of experiment_summary.json, also the ``line`` of an import_type 1 request."""
        tags = key_values(exp.get("tags"))
        return {
            "experiment_id": exp["experiment_id"],
            "experiment_name": exp["name"],
            "description": tags.get("mlflow.note.content") or tags.get("description"),
            "owner": tags.get("mlflow.owner") or tags.get("owner"),
            "artifact_location": exp.get("artifact_location"),
            "lifecycle_stage": exp.get("lifecycle_stage"),
            "runs_total": self.runs_total,
            "status_counts": self.status_counts,
            "first_run_start_time": self.first_start,
            "first_run_start_time_iso": ms_to_iso_utc(self.first_start),
            "last_run_end_time": self.last_end,
            "last_run_end_time_iso": ms_to_iso_utc(self.last_end),
            "metrics": sorted(self.metrics),
            "params": sorted(self.params),
            "tag_keys": sorted(self.tag_keys),
            "dataset_names": sorted(self.dataset_names),
        }


def model_record(model: JsonDict, versions: Iterable[JsonDict]) -> JsonDict:
    """An entry of models.json: a registered model with all its versions, newest first.

    Aliases come from the registered model (``model-versions/search`` leaves them out, which
    is why the original's lists are always empty). Text fields MLflow leaves unset read as
    ``""``, as the Python client the original used shows them.
    """
    aliases: dict[str, list[str]] = {}
    for entry in model.get("aliases") or ():
        aliases.setdefault(str(entry["version"]), []).append(entry["alias"])
    return {
        "name": model["name"],
        "description": model.get("description", ""),
        "tags": key_values(model.get("tags")),
        "created": _ms(model.get("creation_timestamp")),
        "last_updated": _ms(model.get("last_updated_timestamp")),
        "latest_versions": [
            {
                "version": str(v["version"]),
                "current_stage": v.get("current_stage", ""),
                "status": v.get("status", ""),
                "run_id": v.get("run_id", ""),
                "source": v.get("source", ""),
                "description": v.get("description", ""),
                "created": _ms(v.get("creation_timestamp")),
                "last_updated": _ms(v.get("last_updated_timestamp")),
                "tags": key_values(v.get("tags")),
                "aliases": sorted(aliases.get(str(v["version"]), ())),
            }
            for v in sorted(versions, key=lambda v: int(v["version"]), reverse=True)
        ],
    }
