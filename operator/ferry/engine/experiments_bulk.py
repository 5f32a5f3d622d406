"""Many experiments at once, in the peer's bulk layout: ``experiments.json`` plus ``<experiment_id>/``.

Each experiment is exported or imported by `ferry.engine.experiments`; an experiment that fails
as a whole (not found, corrupt) is listed and the others go on.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from ferry.engine.experiments import (
    ExperimentExport,
    ExperimentImport,
    export_experiment,
    import_experiment,
    read_experiment,
)
from ferry.engine.files import read_export_file, write_export_file
from ferry.engine.workspace_objects import WorkspaceExport, WorkspaceImport
from ferry.errors import FerryError, InputError
from ferry.outcome import Counts, Outcome
from ferry.progress import Tracker
from ferry.tracking import JsonDict, LoginRejected, PermissionDenied, TrackingClient

EXPERIMENTS_JSON = "experiments.json"

E = TypeVar("E", ExperimentExport, ExperimentImport)


@dataclass
class Bulk(Generic[E]):
    """The experiments done and those that failed as a whole ("experiment <name>: <reason>")."""

    experiments: list[E] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def counts(self) -> Counts:
        return sum((e.counts for e in self.experiments), Counts())

    def outcome(self, message: str | None = None, path: str | None = None) -> Outcome:
        failed = self.failed + [f for e in self.experiments for f in e.failed]
        return Outcome.of(self.counts, failed, message=message, path=path)


BulkExport = Bulk[ExperimentExport]
BulkImport = Bulk[ExperimentImport]


def resolve_experiments(client: TrackingClient, spec: str | Sequence[str],
                        denied: list[str] | None = None) -> list[JsonDict]:
    """``all``, a comma list, a list, or a ``.txt`` file of experiment names or ids.

    With `denied`, an experiment the server does not let us read is listed there (a failure of
    that experiment) instead of failing the whole call.
    """
    if isinstance(spec, str):
        if spec.endswith(".txt"):
            path = Path(spec)
            if not path.is_file():
                raise InputError(f"experiments file {spec} does not exist")
            names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        else:
            names = [s.strip() for s in spec.split(",") if s.strip()]
    else:
        names = list(spec)
    if names in (["all"], ["*"]):
        return list(client.search_experiments())
    found = []
    for name in names:
        try:
            found.append(client.find_experiment(name))
        except PermissionDenied as err:
            if denied is None:
                raise
            denied.append(f"experiment {name}: {err.message}")
    return found


def export_experiments(client: TrackingClient, experiments: str | Sequence[str], out_dir: Path, *,
                       run_start_time: str | int | None = None, runs_until: str | int | None = None,
                       export_deleted_runs: bool = False, include_artifacts: bool = True, workers: int = 4,
                       tracker: Tracker | None = None,
                       options: Mapping[str, Any] | None = None, include_logged_models: bool = True,
                       include_traces: bool = True, traces_since: int | None = None,
                       workspace: WorkspaceExport | None = None) -> BulkExport:
    """Export experiments into ``<out_dir>/<experiment_id>/`` plus ``experiments.json``."""
    started = time.monotonic()
    result = BulkExport()
    for exp in resolve_experiments(client, experiments, denied=result.failed):
        exp_id = str(exp["experiment_id"])
        try:
            result.experiments.append(export_experiment(
                client, exp_id, out_dir / exp_id, run_start_time=run_start_time, runs_until=runs_until,
                export_deleted_runs=export_deleted_runs, include_artifacts=include_artifacts,
                workers=workers, tracker=tracker, include_logged_models=include_logged_models,
                include_traces=include_traces, traces_since=traces_since, workspace=workspace))
        except LoginRejected:
            raise  # every other experiment would fail the same way: one line, not one per experiment
        except FerryError as err:
            result.failed.append(f"experiment {exp.get('name', exp_id)}: {err.message}")
    ok = sum(len(e.ok_runs) for e in result.experiments)
    bad = sum(len(e.failed_run_ids) for e in result.experiments)
    write_export_file(out_dir, EXPERIMENTS_JSON, script="export_experiments.py", tracking_uri=client.uri,
                      mlflow={"experiments": index_entries(result.experiments)},
                      info={"experiment_names": [e.name for e in result.experiments],
                            "options": dict(options or {}),
                            "status": {"duration": round(time.monotonic() - started, 1),
                                       "experiments": len(result.experiments), "total_runs": ok + bad,
                                       "ok_runs": ok, "failed_runs": bad}})
    return result


def index_entries(exported: Sequence[ExperimentExport]) -> list[JsonDict]:
    """The ``mlflow.experiments`` list of ``experiments.json``."""
    return [{"id": e.experiment_id, "name": e.name, "ok_runs": len(e.ok_runs), "failed_runs": len(e.failed_run_ids)}
            for e in exported]


def read_experiments_index(in_dir: Path) -> list[JsonDict]:
    doc = read_export_file(in_dir / EXPERIMENTS_JSON, "a bulk experiments export")
    exps = doc["mlflow"].get("experiments")
    if not isinstance(exps, list):
        raise InputError(f"{in_dir / EXPERIMENTS_JSON} is corrupt: no 'experiments' list")
    return exps


def rename(name: str, renames: Mapping[str, str] | None) -> str:
    """The peer's rename rule: the first key that prefixes `name` is replaced by its value."""
    for old, new in (renames or {}).items():
        if old and name.startswith(old):
            return name.replace(old, new, 1)
    return name


def import_experiments(client: TrackingClient, in_dir: Path, *, renames: Mapping[str, str] | None = None,
                       import_source_tags: bool = False, use_src_user_id: bool = False, mlmodel_fix: bool = True,
                       workers: int = 4, tracker: Tracker | None = None,
                       workspace: WorkspaceImport | None = None) -> BulkImport:
    """Import every experiment of a bulk export."""
    result = BulkImport()
    for entry in read_experiments_index(in_dir):
        exp_dir = in_dir / str(entry["id"])
        try:
            name = rename(str(entry.get("name") or read_experiment(exp_dir)["mlflow"]["experiment"]["name"]), renames)
            result.experiments.append(import_experiment(
                client, exp_dir, name, import_source_tags=import_source_tags, use_src_user_id=use_src_user_id,
                mlmodel_fix=mlmodel_fix, workers=workers, tracker=tracker, workspace=workspace))
        except LoginRejected:
            raise
        except FerryError as err:
            result.failed.append(f"experiment {entry.get('name', entry.get('id'))}: {err.message}")
    return result
