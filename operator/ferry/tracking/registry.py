"""Writes to MLflow's model registry, next to the reads in `TrackingClient`.

Objects travel as the REST API's JSON, like everywhere in `ferry.tracking`. Every call names the
model (and version) it is about, so a failure reads as one line a user can act on.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from ferry.errors import NotFoundError, ServerError
from ferry.tracking.client import TrackingClient, tags_of
from ferry.tracking.transport import ApiError, JsonDict

READY = "READY"
FAILED = "FAILED_REGISTRATION"
AWAIT_POLL_SECONDS = 0.5


def _kv(tags: Mapping[str, str]) -> list[JsonDict]:
    return [{"key": k, "value": v} for k, v in tags.items()]


class Registry:
    """The registry of one server; reads are delegated to its `TrackingClient`."""

    def __init__(self, client: TrackingClient) -> None:
        self.client = client

    @property
    def uri(self) -> str:
        return self.client.uri

    # -- registered models -----------------------------------------------------------------------

    def find_model(self, name: str) -> JsonDict | None:
        try:
            return self.client.get_registered_model(name)
        except NotFoundError:
            return None

    def get_model(self, name: str) -> JsonDict:
        model = self.find_model(name)
        if model is None:
            raise NotFoundError(f"registered model '{name}' not found in MLflow at {self.uri}")
        return model

    def model_names(self) -> list[str]:
        return [m["name"] for m in self.client.search_registered_models()]

    def create_model(self, name: str, *, tags: Mapping[str, str] | None = None,
                     description: str | None = None) -> bool:
        """Create the model; False if it already existed (left as it is)."""
        body: JsonDict = {"name": name, "tags": _kv(tags or {})}
        if description:
            body["description"] = description
        try:
            self.client.call("POST", "registered-models/create", json=body)
        except ApiError as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            return False
        return True

    def ensure_model(self, name: str, *, tags: Mapping[str, str], description: str | None) -> JsonDict:
        """The model with at least `tags` and `description`, created if missing.

        An existing model converges on the given metadata, so importing again repairs a model
        whose import stopped halfway instead of leaving it different from the source.
        """
        if not self.create_model(name, tags=tags, description=description):
            model = self.get_model(name)
            if description and (model.get("description") or "") != description:
                self.client.call("PATCH", "registered-models/update",
                                 json={"name": name, "description": description})
            existing = tags_of(model)
            for key, value in tags.items():
                if existing.get(key) != value:
                    self.set_model_tag(name, key, value)
        return self.get_model(name)

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        self.client.call("POST", "registered-models/set-tag", json={"name": name, "key": key, "value": value},
                         what=f"registered model '{name}'")

    def delete_model(self, name: str) -> bool:
        """Delete the model with all its versions; False if there was none."""
        try:
            self.client.call("DELETE", "registered-models/delete", json={"name": name},
                             what=f"registered model '{name}'")
        except NotFoundError:
            return False
        return True

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.client.call("POST", "registered-models/alias", json={"name": name, "alias": alias, "version": version},
                         what=f"registered model '{name}'")

    # -- versions --------------------------------------------------------------------------------

    def versions(self, name: str) -> list[JsonDict]:
        """Every version of the model, in numeric order (the server pages them newest first)."""
        found = self.client.search_model_versions(filter=f"name='{_quote(name)}'")
        return sorted(found, key=lambda v: int(v["version"]))

    def latest_versions(self, name: str) -> list[JsonDict]:
        """The newest version per stage, as ``get-latest-versions`` defines "latest"."""
        answer = self.client.call("POST", "registered-models/get-latest-versions", json={"name": name},
                                  what=f"registered model '{name}'")
        return sorted(answer.get("model_versions", []), key=lambda v: int(v["version"]))

    def create_version(self, name: str, *, source: str, run_id: str | None, tags: Mapping[str, str],
                       description: str | None, model_id: str | None = None) -> JsonDict:
        body: JsonDict = {"name": name, "source": source, "tags": _kv(tags)}
        if run_id:
            body["run_id"] = run_id
        if description:
            body["description"] = description
        if model_id:
            body["model_id"] = model_id
        answer = self.client.call("POST", "model-versions/create", json=body, what=f"registered model '{name}'")
        return answer["model_version"]

    def await_ready(self, name: str, version: str, seconds: float) -> JsonDict:
        """Poll until the version leaves PENDING_REGISTRATION; fail after `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            found = self.client.get_model_version(name, version)
            status = found.get("status", READY)
            if status == READY:
                return found
            if status == FAILED:
                raise ServerError(f"version {version} of registered model '{name}' failed to register: "
                                  f"{found.get('status_message') or 'no reason given'}")
            if time.monotonic() >= deadline:
                raise ServerError(f"version {version} of registered model '{name}' is still {status} "
                                  f"after {seconds:g} s")
            time.sleep(AWAIT_POLL_SECONDS)

    def transition_stage(self, name: str, version: str, stage: str) -> None:
        self.client.call("POST", "model-versions/transition-stage",
                         json={"name": name, "version": version, "stage": stage,
                               "archive_existing_versions": False},
                         what=f"version {version} of registered model '{name}'")

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self.client.call("POST", "model-versions/set-tag",
                         json={"name": name, "version": version, "key": key, "value": value},
                         what=f"version {version} of registered model '{name}'")

    def get_version(self, name: str, version: str) -> JsonDict:
        return self.client.get_model_version(name, version)


def _quote(name: str) -> str:
    """A model name inside a single-quoted search filter."""
    return name.replace("'", "\\'")

