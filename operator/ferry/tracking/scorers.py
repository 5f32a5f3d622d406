"""MLflow 3 scorers registered on experiments (``mlflow.genai.scorers``) over the REST API.

The endpoints exist only under ``/api/3.0/mlflow/scorers``. A scorer is a name within an
experiment with numbered versions, each a ``serialized_scorer`` JSON string (a built-in scorer's
settings, a judge's instructions and model, or a custom scorer's code); online scoring configs
(sample rate, trace filter) hang off its ``scorer_id``. An MLflow 2 server answers 404 without an
MLflow error, raised as `EndpointMissing`: no scorers there.
"""

from __future__ import annotations

from collections.abc import Sequence

from ferry.tracking.client import TrackingClient
from ferry.tracking.transport import JsonDict

API3 = "api/3.0/mlflow/scorers"


class Scorers:
    """The registered scorers of one server; transport is its `TrackingClient`'s."""

    def __init__(self, client: TrackingClient) -> None:
        self.client = client

    @property
    def uri(self) -> str:
        return self.client.uri

    def _call(self, method: str, path: str, *, params: object = None, json_body: JsonDict | None = None,
              what: str | None = None) -> JsonDict:
        return self.client.transport.call(method, f"{API3}/{path}", params=params, json=json_body, what=what)

    def latest(self, experiment_id: str) -> list[JsonDict]:
        """The newest version of each scorer of the experiment."""
        answer = self._call("GET", "list", params={"experiment_id": experiment_id},
                            what=f"experiment {experiment_id}")
        return list(answer.get("scorers", []))

    def versions(self, experiment_id: str, name: str) -> list[JsonDict]:
        """Every version of one scorer, oldest first."""
        answer = self._call("GET", "versions", params={"experiment_id": experiment_id, "name": name},
                            what=f"scorer '{name}' of experiment {experiment_id}")
        return sorted(answer.get("scorers", []), key=lambda s: int(s.get("scorer_version", 0)))

    def register(self, experiment_id: str, name: str, serialized_scorer: str) -> JsonDict:
        """A new version of the scorer (MLflow numbers it); the server refuses what it may not run."""
        return self._call("POST", "register", json_body={"experiment_id": experiment_id, "name": name,
                                                         "serialized_scorer": serialized_scorer},
                          what=f"experiment {experiment_id}")

    def online_configs(self, scorer_ids: Sequence[str]) -> list[JsonDict]:
        """Online scoring configs of the scorers (a scorer may have one per experiment)."""
        if not scorer_ids:
            return []
        answer = self._call("GET", "online-configs", params=[("scorer_ids", s) for s in scorer_ids])
        return list(answer.get("configs", []))

    def set_online_config(self, experiment_id: str, name: str, sample_rate: float,
                          filter_string: str | None) -> JsonDict:
        body: JsonDict = {"experiment_id": experiment_id, "name": name, "sample_rate": sample_rate}
        if filter_string is not None:
            body["filter_string"] = filter_string
        return self._call("PUT", "online-config", json_body=body, what=f"scorer '{name}' of experiment {experiment_id}")
