"""MLflow 3 logged models over REST (``/api/2.0/mlflow/logged-models/...``), next to `TrackingClient`.

A logged model (``mlflow.<flavor>.log_model(name=...)``) is an object of its own: it has a name,
a model type, a status, params, tags, metrics logged against it (through a run's ``log-batch``
with ``model_id`` on each metric) and files under its own artifact location, outside the run's
artifacts. The calls mirror what MLflow's ``RestStore`` sends for ``create_logged_model``,
``log_model_params``, ``finalize_logged_model`` and ``set_logged_model_tags``.

An MLflow 2 server has none of these endpoints; `search` reads that as "no logged models here".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from ferry.errors import NotFoundError, ServerError
from ferry.tracking.artifacts import ArtifactStore
from ferry.tracking.client import TrackingClient
from ferry.tracking.transport import ApiError, EndpointMissing, JsonDict

SEARCH_PAGE_SIZE = 100      # what MLflow's client asks for; the server caps a page anyway
PARAMS_PER_REQUEST = 100    # MLflow's _MLFLOW_CREATE/LOG_LOGGED_MODEL_PARAMS_BATCH_SIZE
TAGS_PER_REQUEST = 100
READY = "LOGGED_MODEL_READY"
FAILED = "LOGGED_MODEL_UPLOAD_FAILED"  # LoggedModelStatus.FAILED in MLflow's Python API
PENDING = "LOGGED_MODEL_PENDING"


def _kv(mapping: Mapping[str, str]) -> list[JsonDict]:
    return [{"key": k, "value": v} for k, v in mapping.items()]


def _missing(err: Exception) -> bool:
    """The server has no logged-model endpoints (MLflow 2): not an error, just none of them."""
    return isinstance(err, EndpointMissing) or (isinstance(err, ApiError) and err.error_code == "ENDPOINT_NOT_FOUND")


class LoggedModels:
    """The logged models of one server; runs and artifacts go through its `TrackingClient`."""

    def __init__(self, client: TrackingClient) -> None:
        self.client = client
        self.missing = False  # set when the server answered that it has no logged-model endpoints

    @property
    def uri(self) -> str:
        return self.client.uri

    def _path(self, model_id: str) -> str:
        return f"logged-models/{model_id}"

    def search(self, experiment_ids: Sequence[str], *, filter: str | None = None) -> Iterator[JsonDict]:
        """Every logged model of the experiments (``{"info", "data"}``), page by page."""
        if not experiment_ids:
            return
        body: JsonDict = {"experiment_ids": list(experiment_ids), "max_results": SEARCH_PAGE_SIZE}
        if filter:
            body["filter"] = filter
        token: str | None = None
        while True:
            try:
                page = self.client.call("POST", "logged-models/search",
                                        json={**body, **({"page_token": token} if token else {})})
            except (EndpointMissing, ApiError) as err:
                if _missing(err):
                    self.missing = True
                    return
                raise
            yield from page.get("models") or []
            token = page.get("next_page_token")
            if not token:
                return

    def find_tagged(self, experiment_id: str, key: str, value: str) -> list[JsonDict]:
        """The experiment's logged models whose tag `key` is `value` (how earlier imports are found)."""
        quoted = value.replace("'", "\\'")
        return list(self.search([experiment_id], filter=f"tags.`{key}` = '{quoted}'"))

    def get(self, model_id: str) -> JsonDict:
        return self.client.call("GET", self._path(model_id), what=f"logged model '{model_id}'")["model"]

    def find(self, model_id: str) -> JsonDict | None:
        try:
            return self.get(model_id)
        except NotFoundError:
            return None

    def create(self, experiment_id: str, *, name: str | None, model_type: str | None, source_run_id: str | None,
               params: Mapping[str, str], tags: Mapping[str, str]) -> JsonDict:
        """A new PENDING logged model; params beyond the first request's 100 are logged after."""
        items = _kv(params)
        body: JsonDict = {"experiment_id": experiment_id, "params": items[:PARAMS_PER_REQUEST],
                          "tags": _kv(tags)}
        for key, value in (("name", name), ("model_type", model_type), ("source_run_id", source_run_id)):
            if value:
                body[key] = value
        try:
            model = self.client.call("POST", "logged-models", json=body)["model"]
        except (EndpointMissing, ApiError) as err:
            if _missing(err):
                raise ServerError(f"MLflow at {self.uri} has no logged models (MLflow 2): "
                                  f"cannot create '{name or 'unnamed'}'") from None
            raise
        if len(items) > PARAMS_PER_REQUEST:
            self.log_params(model["info"]["model_id"], items[PARAMS_PER_REQUEST:])
            model = self.get(model["info"]["model_id"])
        return model

    def log_params(self, model_id: str, params: Sequence[JsonDict]) -> None:
        for start in range(0, len(params), PARAMS_PER_REQUEST):
            self.client.call("POST", f"{self._path(model_id)}/params",
                             json={"model_id": model_id, "params": list(params[start:start + PARAMS_PER_REQUEST])},
                             what=f"logged model '{model_id}'")

    def set_tags(self, model_id: str, tags: Mapping[str, str]) -> None:
        items = _kv(tags)
        for start in range(0, len(items), TAGS_PER_REQUEST):
            self.client.call("PATCH", f"{self._path(model_id)}/tags", json={"tags": items[start:start + TAGS_PER_REQUEST]},
                             what=f"logged model '{model_id}'")

    def finalize(self, model_id: str, status: str) -> JsonDict:
        """Set the final status (``LOGGED_MODEL_READY`` or ``LOGGED_MODEL_FAILED``)."""
        return self.client.call("PATCH", self._path(model_id), json={"model_id": model_id, "status": status},
                                what=f"logged model '{model_id}'")["model"]

    def delete(self, model_id: str) -> None:
        self.client.call("DELETE", self._path(model_id), what=f"logged model '{model_id}'")

    def log_metrics(self, run_id: str, metrics: Iterable[JsonDict]) -> None:
        """Metrics with ``model_id`` (and dataset) on each point, logged through the run that measured them.

        MLflow writes such a point to the run's history and to the model's metrics; a point the
        run already has (an imported run's history) is not duplicated there.
        """
        self.client.log_batch(run_id, metrics=list(metrics))

    def log_outputs(self, run_id: str, outputs: Sequence[JsonDict]) -> None:
        """Record models as the run's outputs: ``[{"model_id", "step"}]``."""
        if outputs:
            self.client.call("POST", "runs/outputs", json={"run_id": run_id, "models": list(outputs)},
                             what=f"run '{run_id}'")

    def log_inputs(self, run_id: str, inputs: Sequence[JsonDict]) -> None:
        """Record models as the run's inputs: ``[{"model_id"}]``."""
        if inputs:
            self.client.call("POST", "runs/log-inputs", json={"run_id": run_id, "datasets": [], "models": list(inputs)},
                             what=f"run '{run_id}'")

    def artifacts(self, model: JsonDict) -> ArtifactStore:
        """The model's files, under its own ``artifact_uri`` (``.../models/<id>/artifacts``)."""
        return ArtifactStore(self.client, model["info"]["artifact_uri"])
