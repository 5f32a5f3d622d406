"""MLflow 3's prompt registry over REST: the registered-model endpoints, restricted to prompts.

MLflow has no prompt endpoints of its own in open source: a prompt is a registered model tagged
``mlflow.prompt.is_prompt = true`` and each prompt version is a model version carrying the same
tag, its template in ``mlflow.prompt.text`` and a placeholder source (see
``mlflow/store/model_registry/abstract_store.py``, ``create_prompt`` and ``create_prompt_version``).
The SQL store leaves prompts out of every search unless the filter asks for that tag, so every
listing here asks for it explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping

from ferry.errors import NotFoundError
from ferry.tracking.client import TrackingClient, tags_of
from ferry.tracking.transport import ApiError, EndpointMissing, JsonDict

IS_PROMPT_TAG = "mlflow.prompt.is_prompt"
# What MLflow's own client sends as a prompt version's source; the server refuses any other value
# than its placeholders (``_validate_prompt_source`` in mlflow/server/handlers.py).
PROMPT_SOURCE = "dummy-source"


def is_prompt(model: Mapping[str, object]) -> bool:
    """A registered model (REST JSON) that is a prompt, by MLflow's own test of the tag."""
    return tags_of(model).get(IS_PROMPT_TAG, "false").lower() == "true"


def _quote(name: str) -> str:
    return name.replace("'", "\\'")


def _kv(tags: Mapping[str, str]) -> list[JsonDict]:
    return [{"key": k, "value": v} for k, v in tags.items()]


class Prompts:
    """The prompts of one server; every call names the prompt so a failure reads as one line."""

    def __init__(self, client: TrackingClient) -> None:
        self.client = client

    @property
    def uri(self) -> str:
        return self.client.uri

    def names(self) -> list[str]:
        """Every prompt's name; none on a server without a registry (HTTP 404)."""
        try:
            found = self.client.search_registered_models(filter=f"tags.`{IS_PROMPT_TAG}` = 'true'")
            return sorted(m["name"] for m in found if is_prompt(m))
        except EndpointMissing:
            return []

    def find(self, name: str) -> JsonDict | None:
        """The registered model named `name` (prompt or not), or None."""
        try:
            return self.client.get_registered_model(name)
        except NotFoundError:
            return None

    def get(self, name: str) -> JsonDict:
        """The prompt `name`; a registered model of that name that is not a prompt is an error."""
        found = self.find(name)
        if found is None:
            raise NotFoundError(f"prompt '{name}' not found in MLflow at {self.uri}")
        if not is_prompt(found):
            raise NotFoundError(f"'{name}' is a registered model, not a prompt, in MLflow at {self.uri}")
        return found

    def versions(self, name: str) -> list[JsonDict]:
        """Every version of the prompt in numeric order (the server pages them newest first)."""
        found = self.client.search_model_versions(
            filter=f"name = '{_quote(name)}' AND tag.`{IS_PROMPT_TAG}` = 'true'")
        return sorted(found, key=lambda v: int(v["version"]))

    def get_version(self, name: str, version: str) -> JsonDict:
        return self.client.get_model_version(name, version)

    def create(self, name: str, *, tags: Mapping[str, str], description: str | None) -> bool:
        """Create the prompt (the prompt tag is added); False if the name was taken already."""
        body: JsonDict = {"name": name, "tags": _kv({IS_PROMPT_TAG: "true", **tags})}
        if description:
            body["description"] = description
        try:
            self.client.call("POST", "registered-models/create", json=body, what=f"prompt '{name}'")
        except ApiError as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            return False
        return True

    def set_description(self, name: str, description: str) -> None:
        self.client.call("PATCH", "registered-models/update", json={"name": name, "description": description},
                         what=f"prompt '{name}'")

    def set_tag(self, name: str, key: str, value: str) -> None:
        self.client.call("POST", "registered-models/set-tag", json={"name": name, "key": key, "value": value},
                         what=f"prompt '{name}'")

    def delete(self, name: str) -> bool:
        """Delete the prompt with all its versions; False if there was none."""
        try:
            self.client.call("DELETE", "registered-models/delete", json={"name": name}, what=f"prompt '{name}'")
        except NotFoundError:
            return False
        return True

    def create_version(self, name: str, *, tags: Mapping[str, str], description: str | None) -> JsonDict:
        """A new version; `tags` must hold the template tags (the prompt tag is added)."""
        body: JsonDict = {"name": name, "source": PROMPT_SOURCE, "tags": _kv({IS_PROMPT_TAG: "true", **tags})}
        if description:
            body["description"] = description
        answer = self.client.call("POST", "model-versions/create", json=body, what=f"prompt '{name}'")
        return answer["model_version"]

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.client.call("POST", "registered-models/alias", json={"name": name, "alias": alias, "version": version},
                         what=f"prompt '{name}'")
