"""Read an MLflow server page by page into an `ExportFolder`.

Where kiroframe-importer asks for each run again (``get_run``) and for each metric of each run
separately, this reads runs from ``runs/search`` pages (which carry latest metrics, params, tags
and dataset inputs) and fetches metric histories in bulk, one request per metric key for up to
100 runs, several keys at a time. Only one chunk of runs and their histories is held at once.

In an incremental export every run still counts towards its experiment's summary (Kiroframe
replaces the summary), but only runs changed since the watermark get a history and a row.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from ferry.errors import FerryError
from ferry.kiroframe.folder import ExportFolder
from ferry.kiroframe.records import ExperimentTally, JsonDict, RunView, dataset_rows, model_record, run_row
from ferry.kiroframe.settings import KiroframeSettings
from ferry.progress import Tracker
from ferry.tracking import ArtifactStore, TrackingClient
from ferry.tracking.client import BULK_HISTORY_MAX_RUNS

log = logging.getLogger("ferry.kiroframe")

RUN_ORDER = ("attributes.start_time DESC",)  # the original's order within an experiment


@dataclass
class ExportStats:
    experiments: int = 0
    runs: int = 0
    dataset_rows: int = 0
    models: int = 0
    versions: int = 0
    history_errors: list[str] = field(default_factory=list)
    experiments_detail: dict[str, JsonDict] = field(default_factory=dict)


def _chunks(items: Iterable[JsonDict], size: int) -> Iterator[list[JsonDict]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def experiments(client: TrackingClient, page_size: int) -> Iterator[JsonDict]:
    """Active experiments, in pages of the user's size (``EXP_PAGE_SIZE``)."""
    token: str | None = None
    while True:
        body: JsonDict = {"max_results": page_size, "view_type": "ACTIVE_ONLY"}
        if token:
            body["page_token"] = token
        page = client.call("POST", "experiments/search", json=body)
        yield from page.get("experiments", [])
        token = page.get("next_page_token")
        if not token:
            return


def histories(client: TrackingClient, runs: Sequence[RunView], pool: ThreadPoolExecutor,
              errors: list[str]) -> dict[str, dict[str, Any]]:
    """``{run_id: {key: [{step, ts, value}]}}`` for every metric of `runs`, one request per key.

    A key that cannot be read becomes ``{"error": reason}`` in each run that has it, as in the
    original, and is listed in `errors`.
    """
    by_key: dict[str, list[str]] = {}
    for run in runs:
        for key in run.metrics:
            by_key.setdefault(key, []).append(run.run_id)

    def fetch(key: str) -> tuple[str, dict[str, list[JsonDict]] | str]:
        try:
            return key, client.get_metric_histories(by_key[key], key)
        except FerryError as err:
            return key, err.message

    fetched = dict(pool.map(fetch, by_key))
    out: dict[str, dict[str, Any]] = {}
    for run in runs:
        hist: dict[str, Any] = {}
        for key in run.metrics:  # the run's own key order, as the original iterates it
            points = fetched[key]
            if isinstance(points, str):
                hist[key] = {"error": points}
                errors.append(f"run {run.run_id}: metric history of '{key}': {points}")
            else:
                hist[key] = [{"step": int(p.get("step", 0)), "ts": int(p["timestamp"]), "value": p["value"]}
                             for p in points.get(run.run_id, ())]
        out[run.run_id] = hist
    return out


class Exporter:
    """One pass over the server that fills one folder."""

    def __init__(self, settings: KiroframeSettings, client: TrackingClient, folder: ExportFolder,
                 since: int | None, tracker: Tracker) -> None:
        self.settings = settings
        self.client = client
        self.folder = folder
        self.since = since
        self.tracker = tracker
        self.stats = ExportStats()
        self.manifest: list[JsonDict] = []

    def run(self) -> list[JsonDict] | None:
        """Write every file; return the models list (None when models are not exported)."""
        with ThreadPoolExecutor(max_workers=self.settings.workers, thread_name_prefix="history") as pool:
            for exp in experiments(self.client, self.settings.experiment_page_size):
                self._experiment(exp, pool)
        log.info("Found %d experiments, exported %d runs", self.stats.experiments, self.stats.runs)
        return self._models() if self.settings.export_models else None

    def _experiment(self, exp: JsonDict, pool: ThreadPoolExecutor) -> None:
        stats = self.stats
        stats.experiments += 1
        detail = stats.experiments_detail.setdefault(exp["experiment_id"],
                                                     {"name": exp["name"], "runs": 0, "dataset_rows": 0})
        tally = ExperimentTally()
        found = self.client.search_runs([exp["experiment_id"]], order_by=RUN_ORDER,
                                        page_size=self.settings.run_page_size)
        for chunk in _chunks(found, BULK_HISTORY_MAX_RUNS):
            views = [RunView.of(r) for r in chunk]
            for view in views:
                tally.add(view)
            changed = [v for v in views if self.since is None or v.changed_since(self.since)]
            if not changed:
                continue
            self.tracker.add_total(len(changed))
            hist = histories(self.client, changed, pool, stats.history_errors)
            schema_profile = self.settings.include_schema_profile
            for view in changed:
                rows = dataset_rows(exp, view, schema_profile=schema_profile)
                self.folder.write_run(view, run_row(exp, view, hist[view.run_id], schema_profile=schema_profile),
                                      rows)
                if self.settings.download_artifacts:
                    self._artifacts(view)
                stats.runs += 1
                stats.dataset_rows += len(rows)
                detail["runs"] += 1
                detail["dataset_rows"] += len(rows)
            self.tracker.advance(len(changed))
        self.folder.write_experiment_summary(tally.summary_row(exp))
        log.info("Exported experiment '%s' (%s): %d runs", exp["name"], exp["experiment_id"], detail["runs"])

    def _artifacts(self, run: RunView) -> None:
        dest = self.folder.final_path / "artifacts" / run.run_id
        try:
            ArtifactStore(self.client, str(run.info.get("artifact_uri", ""))).download_tree(
                self.folder.path / "artifacts" / run.run_id)
            self.manifest.append({"run_id": run.run_id, "artifacts_path": str(dest)})
        except FerryError as err:
            self.manifest.append({"run_id": run.run_id, "artifacts_error": err.message})
        except OSError as err:
            self.manifest.append({"run_id": run.run_id, "artifacts_error": str(err)})

    def _models(self) -> list[JsonDict]:
        models = []
        for model in self.client.search_registered_models():
            name = model["name"]
            quoted = name.replace("'", "\\'")
            versions = list(self.client.search_model_versions(filter=f"name='{quoted}'",
                                                              order_by=["version_number DESC"]))
            models.append(model_record(model, versions))
            self.stats.versions += len(versions)
        self.stats.models = len(models)
        log.info("Exported %d registered models with %d versions", len(models), self.stats.versions)
        return models

    def _mlflow_version(self) -> str:
        """The server's MLflow version (``/version``); the local library's if it does not say."""
        try:
            return self.client.transport.request("GET", "version").text.strip()
        except FerryError:
            return metadata.version("mlflow-skinny")

    def summary(self) -> JsonDict:
        """summary.json's fields as the original writes them (ours are added by the sync)."""
        return {
            "mlflow_version": self._mlflow_version(),
            "experiments": self.stats.experiments,
            "runs": self.stats.runs,
            "dataset_rows": self.stats.dataset_rows,
            "artifact_entries": len(self.manifest),
            "experiments_detail": self.stats.experiments_detail,
        }
