"""A typed client for MLflow's tracking and registry REST API (``/api/2.0/mlflow/...``).

Objects travel as the REST API's own JSON (``{"info": ..., "data": ...}`` for a run), which is
also what the export format stores: no conversion to MLflow entities and back. Listing calls are
generators over server pages so that callers hold one page at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ferry.errors import NotFoundError
from ferry.tracking.batching import batches
from ferry.tracking.databricks import Workspace, is_databricks_uri, refuse_unity_catalog, resolve
from ferry.tracking.settings import TrackingSettings
from ferry.tracking.transport import ApiError, EndpointMissing, JsonDict, Transport

API = "api/2.0/mlflow"
AJAX_API = "ajax-api/2.0/mlflow"

RUNS_PAGE_SIZE = 1000             # runs/search allows 50000, but a page is held in memory
EXPERIMENTS_PAGE_SIZE = 1000
MODELS_PAGE_SIZE = 1000           # registered-models/search's maximum
VERSIONS_PAGE_SIZE = 10000
HISTORY_PAGE_SIZE = 25000         # MLflow's cap for one metric-history answer
BULK_HISTORY_MAX_RUNS = 100       # get-history-bulk's cap on run_ids per request
BULK_HISTORY_MAX_POINTS = 25000   # get-history-bulk's cap on points per answer (all runs together)

ViewType = str  # "ACTIVE_ONLY" | "DELETED_ONLY" | "ALL"
# A log-inputs request that lost a race for a new dataset row is sent again. Each loss means some
# other request committed that dataset, so only a request of many new datasets, each contended by
# a different writer, can lose more than once.
DATASET_CONFLICT_ATTEMPTS = 5
# How MLflow reports a violated unique constraint (BAD_REQUEST, HTTP 400) on each database it supports.
_UNIQUE_VIOLATIONS = ("duplicate key value violates unique constraint",  # PostgreSQL
                      "unique constraint failed",  # SQLite
                      "duplicate entry",  # MySQL
                      "violation of unique key constraint", "cannot insert duplicate key")  # SQL Server


class TrackingClient:
    """One MLflow server. Thread-safe: each thread gets its own pooled HTTP session."""

    def __init__(self, uri: str, settings: TrackingSettings | None = None) -> None:
        """`uri` is an http(s) URL of a tracking server, or ``databricks[://<profile>]``.

        A Databricks workspace is signed in to through databricks-sdk (`ferry.tracking.databricks`)
        and serves no ``ajax-api``: the per-metric history endpoint is used without asking.
        """
        settings = settings or TrackingSettings.from_env()
        refuse_unity_catalog(uri, "tracking URI")
        self.workspace: Workspace | None = None
        if is_databricks_uri(uri):
            self.workspace = resolve(uri, prefix=settings.prefix, timeout=settings.retry_seconds)
            self.transport = Transport(self.workspace.host, settings, auth=self.workspace.auth,
                                       credentials=self.workspace.credentials)
        else:
            self.transport = Transport(uri, settings)
        self._bulk_history_supported: bool | None = (
            False if self.workspace or settings.metric_history == "per-metric" else None)
        self._history_pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def uri(self) -> str:
        return self.transport.uri

    def call(self, method: str, endpoint: str, *, params: Any = None, json: JsonDict | None = None,
             what: str | None = None) -> JsonDict:
        """Any ``/api/2.0/mlflow/<endpoint>`` call, for endpoints without a method here."""
        return self.transport.call(method, f"{API}/{endpoint}", params=params, json=json, what=what)

    # -- experiments -----------------------------------------------------------------------------

    def get_experiment(self, experiment_id: str) -> JsonDict:
        return self.call("GET", "experiments/get", params={"experiment_id": experiment_id},
                         what=f"experiment {experiment_id}")["experiment"]

    def get_experiment_by_name(self, name: str) -> JsonDict | None:
        try:
            return self.call("GET", "experiments/get-by-name", params={"experiment_name": name},
                             what=f"experiment '{name}'")["experiment"]
        except NotFoundError:
            return None

    def find_experiment(self, id_or_name: str) -> JsonDict:
        """An experiment by name, else by id (the peer's `--experiment` accepts either)."""
        exp = self.get_experiment_by_name(id_or_name)
        if exp is not None:
            return exp
        if id_or_name.isdigit():
            try:
                return self.get_experiment(id_or_name)
            except (NotFoundError, ApiError):
                pass
        raise NotFoundError(f"experiment '{id_or_name}' not found in MLflow at {self.uri}")

    def search_experiments(self, *, view_type: ViewType = "ACTIVE_ONLY", filter: str | None = None,
                           order_by: Sequence[str] = ()) -> Iterator[JsonDict]:
        body: JsonDict = {"max_results": EXPERIMENTS_PAGE_SIZE, "view_type": view_type, "order_by": list(order_by)}
        if filter:
            body["filter"] = filter
        yield from self._pages("experiments/search", body, "experiments")

    def create_experiment(self, name: str, *, tags: Mapping[str, str] | None = None,
                          artifact_location: str | None = None) -> str:
        body: JsonDict = {"name": name, "tags": _kv(tags or {})}
        if artifact_location:
            body["artifact_location"] = artifact_location
        return str(self.call("POST", "experiments/create", json=body)["experiment_id"])

    def get_or_create_experiment(self, name: str, *, tags: Mapping[str, str] | None = None) -> JsonDict:
        """The experiment named `name`, created with `tags` if missing; restored if deleted.

        Tags of an existing experiment are set too, so a rerun converges on the same state.
        """
        exp = self.get_experiment_by_name(name)
        if exp is None:
            try:
                self.create_experiment(name, tags=tags)
            except ApiError as err:
                if err.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            exp = self.get_experiment_by_name(name)
            if exp is None:
                raise NotFoundError(f"experiment '{name}' vanished right after it was created in MLflow at {self.uri}")
            return exp
        if exp.get("lifecycle_stage") == "deleted":
            self.call("POST", "experiments/restore", json={"experiment_id": exp["experiment_id"]})
        existing = {t["key"]: t.get("value") for t in exp.get("tags", [])}
        for key, value in (tags or {}).items():
            if existing.get(key) != value:
                self.set_experiment_tag(exp["experiment_id"], key, value)
        return self.get_experiment(exp["experiment_id"])

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        self.call("POST", "experiments/set-experiment-tag",
                  json={"experiment_id": experiment_id, "key": key, "value": value})

    # -- runs ------------------------------------------------------------------------------------

    def get_run(self, run_id: str) -> JsonDict:
        return self.call("GET", "runs/get", params={"run_id": run_id}, what=f"run '{run_id}'")["run"]

    def search_runs(self, experiment_ids: Sequence[str], *, filter: str | None = None,
                    run_view_type: ViewType = "ACTIVE_ONLY", order_by: Sequence[str] = (),
                    page_size: int = RUNS_PAGE_SIZE) -> Iterator[JsonDict]:
        """Every matching run with its latest metrics, params, tags and inputs, page by page."""
        body: JsonDict = {"experiment_ids": list(experiment_ids), "max_results": page_size,
                          "run_view_type": run_view_type, "order_by": list(order_by)}
        if filter:
            body["filter"] = filter
        yield from self._pages("runs/search", body, "runs")

    def create_run(self, experiment_id: str, *, start_time: int | None = None, run_name: str | None = None,
                   tags: Mapping[str, str] | None = None, user_id: str | None = None) -> JsonDict:
        body: JsonDict = {"experiment_id": experiment_id, "tags": _kv(tags or {})}
        if start_time is not None:
            body["start_time"] = start_time
        if run_name:
            body["run_name"] = run_name
        if user_id:
            body["user_id"] = user_id
        return self.call("POST", "runs/create", json=body, what=f"experiment {experiment_id}")["run"]

    def update_run(self, run_id: str, *, status: str | None = None, end_time: int | None = None,
                   run_name: str | None = None) -> JsonDict:
        body: JsonDict = {"run_id": run_id}
        if status:
            body["status"] = status
        if end_time is not None:
            body["end_time"] = end_time
        if run_name:
            body["run_name"] = run_name
        return self.call("POST", "runs/update", json=body, what=f"run '{run_id}'").get("run_info", {})

    def delete_run(self, run_id: str) -> None:
        self.call("POST", "runs/delete", json={"run_id": run_id}, what=f"run '{run_id}'")

    def restore_run(self, run_id: str) -> None:
        self.call("POST", "runs/restore", json={"run_id": run_id}, what=f"run '{run_id}'")

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self.call("POST", "runs/set-tag", json={"run_id": run_id, "key": key, "value": value},
                  what=f"run '{run_id}'")

    def log_batch(self, run_id: str, *, metrics: Sequence[JsonDict] = (), params: Sequence[JsonDict] = (),
                  tags: Sequence[JsonDict] = ()) -> int:
        """Log any amount of data in as few requests as MLflow's limits allow; returns the count."""
        calls = 0
        for batch in batches(metrics, params, tags):
            self.call("POST", "runs/log-batch", json={"run_id": run_id, **batch.as_json()}, what=f"run '{run_id}'")
            calls += 1
        return calls

    def log_inputs(self, run_id: str, datasets: Sequence[JsonDict], models: Sequence[JsonDict] = ()) -> None:
        """`datasets`: ``[{"dataset": {...}, "tags": [{"key", "value"}]}]`` as runs/get returns them.

        MLflow looks a dataset up, then inserts it if missing, in one transaction: two requests
        that first use the same dataset at once both insert it, and on a database with real
        concurrent writers (PostgreSQL, MySQL) the later commit fails on the dataset's unique
        constraint (HTTP 400). Nothing of that request was written, and the winner's row is
        committed by then, so the request is sent again and this time finds the dataset.
        """
        for start in range(0, max(len(datasets), 1), 1000):
            body: JsonDict = {"run_id": run_id, "datasets": list(datasets[start:start + 1000])}
            if models and start == 0:
                body["models"] = list(models)
            if body["datasets"] or models:
                self._log_inputs_once(run_id, body)

    def _log_inputs_once(self, run_id: str, body: JsonDict) -> None:
        for attempt in range(1, DATASET_CONFLICT_ATTEMPTS + 1):
            try:
                self.call("POST", "runs/log-inputs", json=body, what=f"run '{run_id}'")
                return
            except ApiError as err:
                if attempt == DATASET_CONFLICT_ATTEMPTS or not is_unique_conflict(err):
                    raise

    # -- metric history --------------------------------------------------------------------------

    def get_metric_history(self, run_id: str, key: str) -> Iterator[JsonDict]:
        """Every point of one metric of one run: ``{"key", "value", "timestamp", "step"}``."""
        params = {"run_id": run_id, "metric_key": key, "max_results": HISTORY_PAGE_SIZE}
        token: str | None = None
        while True:
            page = self.call("GET", "metrics/get-history", params={**params, **({"page_token": token} if token else {})},
                             what=f"run '{run_id}'")
            yield from page.get("metrics", [])
            token = page.get("next_page_token")
            if not token:
                return

    def get_metric_histories(self, run_ids: Sequence[str], key: str) -> dict[str, list[JsonDict]]:
        """Every point of metric `key` for each run, in as few requests as the server allows.

        Uses the UI's ``get-history-bulk`` (up to 100 runs and 25000 points per answer, ordered by
        run id). When an answer hits the point cap, the last run in it may be cut off: the runs
        before it are complete, and the rest are asked again. A single run with more points than
        the cap is read through the paged single-run endpoint. Every point is returned; the
        sampling ``get-history-bulk-interval`` endpoint is never used.

        A server without the bulk endpoint (Databricks, older open-source servers; detected on
        the first answer and remembered) or ``FERRY_METRIC_HISTORY=per-metric`` gets the paged
        per-metric endpoint instead, `history_workers` requests at a time for this client.
        """
        result: dict[str, list[JsonDict]] = {run_id: [] for run_id in run_ids}
        pending = sorted(set(run_ids))
        while pending:
            chunk, pending = pending[:BULK_HISTORY_MAX_RUNS], pending[BULK_HISTORY_MAX_RUNS:]
            points = self._bulk_history(chunk, key) if self.bulk_history_served is not False else None
            if points is None:
                result.update(self._per_metric_histories(chunk, key))
                continue
            if len(points) < BULK_HISTORY_MAX_POINTS:
                complete, redo = chunk, []
            else:
                last = points[-1]["run_id"]
                complete = [r for r in chunk if r < last]
                redo = [r for r in chunk if r >= last]
                if not complete:  # one run alone fills the answer
                    result[last] = list(self.get_metric_history(last, key))
                    redo = [r for r in redo if r != last]
            done = set(complete)
            for point in points:
                run_id = point.pop("run_id")
                if run_id in done:
                    result[run_id].append(point)
            pending = redo + pending
        return result

    @property
    def bulk_history_served(self) -> bool | None:
        """Whether the server serves ``get-history-bulk``: None until its first answer says."""
        return self._bulk_history_supported

    def _per_metric_histories(self, run_ids: Sequence[str], key: str) -> dict[str, list[JsonDict]]:
        """One paged ``metrics/get-history`` per run, at most `history_workers` in flight per client.

        The pool is the client's, not the call's: engines call this from their own worker threads,
        and the bound holds for all of them together.
        """
        with self._lock:
            if self._history_pool is None:
                self._history_pool = ThreadPoolExecutor(self.transport.settings.history_workers,
                                                        thread_name_prefix="ferry-history")
            pool = self._history_pool
        futures = {run_id: pool.submit(lambda r: list(self.get_metric_history(r, key)), run_id) for run_id in run_ids}
        return {run_id: future.result() for run_id, future in futures.items()}

    def _bulk_history(self, run_ids: Sequence[str], key: str) -> list[JsonDict] | None:
        params: list[tuple[str, Any]] = [("run_id", r) for r in run_ids]
        params += [("metric_key", key), ("max_results", BULK_HISTORY_MAX_POINTS)]
        try:
            answer = self.transport.call("GET", f"{AJAX_API}/metrics/get-history-bulk", params=params)
        except EndpointMissing:
            with self._lock:
                self._bulk_history_supported = False
            return None
        self._bulk_history_supported = True
        return list(answer.get("metrics", []))

    # -- registry --------------------------------------------------------------------------------

    def search_registered_models(self, *, filter: str | None = None,
                                 order_by: Sequence[str] = ()) -> Iterator[JsonDict]:
        body: JsonDict = {"max_results": MODELS_PAGE_SIZE, "order_by": list(order_by)}
        if filter:
            body["filter"] = filter
        yield from self._pages("registered-models/search", body, "registered_models", method="GET")

    def get_registered_model(self, name: str) -> JsonDict:
        return self.call("GET", "registered-models/get", params={"name": name},
                         what=f"registered model '{name}'")["registered_model"]

    def search_model_versions(self, *, filter: str | None = None,
                              order_by: Sequence[str] = ()) -> Iterator[JsonDict]:
        body: JsonDict = {"max_results": VERSIONS_PAGE_SIZE, "order_by": list(order_by)}
        if filter:
            body["filter"] = filter
        yield from self._pages("model-versions/search", body, "model_versions", method="GET")

    def get_model_version(self, name: str, version: str | int) -> JsonDict:
        return self.call("GET", "model-versions/get", params={"name": name, "version": str(version)},
                         what=f"version {version} of registered model '{name}'")["model_version"]

    # -- MLflow 3 logged models ------------------------------------------------------------------

    def get_logged_model(self, model_id: str) -> JsonDict:
        return self.call("GET", f"logged-models/{model_id}", what=f"logged model '{model_id}'")["model"]

    # -- paging ----------------------------------------------------------------------------------

    def _pages(self, endpoint: str, body: JsonDict, field: str, *, method: str = "POST") -> Iterator[JsonDict]:
        token: str | None = None
        while True:
            page_body = {**body, **({"page_token": token} if token else {})}
            if method == "GET":
                params = [(k, v) for k, v in page_body.items() if not isinstance(v, list)]
                params += [(k, item) for k, v in page_body.items() if isinstance(v, list) for item in v]
                page = self.call("GET", endpoint, params=params)
            else:
                page = self.call("POST", endpoint, json=page_body)
            yield from page.get(field, [])
            token = page.get("next_page_token")
            if not token:
                return


def _kv(mapping: Mapping[str, str]) -> list[JsonDict]:
    return [{"key": k, "value": v} for k, v in mapping.items()]


def tags_of(obj: Mapping[str, Any]) -> dict[str, str]:
    """``{"key": ..., "value": ...}`` lists (as the REST API returns them) as a dict."""
    items: Iterable[Mapping[str, Any]] = obj.get("tags", []) or []
    return {t["key"]: t.get("value", "") for t in items}


def is_unique_conflict(err: ApiError) -> bool:
    """The server refused a write because a row it inserts was inserted by a concurrent request."""
    return err.status == 400 and any(words in err.message.lower() for words in _UNIQUE_VIOLATIONS)
