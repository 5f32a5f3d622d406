"""MLflow's model registry webhooks (MLflow >= 3.3) over the REST API (``/api/2.0/mlflow/webhooks``).

A webhook is a URL MLflow posts registry events to (``{"entity": "MODEL_VERSION", "action":
"CREATED"}``, ...), with a name, a description, a status (``ACTIVE``/``DISABLED``) and an optional
signing secret. The API never returns the secret: it is write-only (create and update take it;
no answer carries it). A server older than 3.3 (every MLflow 2) answers 404 without an MLflow
error, raised as `EndpointMissing`: no webhooks there.
"""

from __future__ import annotations

from collections.abc import Sequence

from ferry.tracking.client import API, TrackingClient
from ferry.tracking.transport import JsonDict

WEBHOOKS = f"{API}/webhooks"
PAGE_SIZE = 100  # the server's default page; it accepts up to 1000


class Webhooks:
    """The webhooks of one server; transport is its `TrackingClient`'s."""

    def __init__(self, client: TrackingClient) -> None:
        self.client = client

    @property
    def uri(self) -> str:
        return self.client.uri

    def _call(self, method: str, path: str = "", *, params: object = None, json_body: JsonDict | None = None,
              what: str | None = None) -> JsonDict:
        url = f"{WEBHOOKS}/{path}" if path else WEBHOOKS
        return self.client.transport.call(method, url, params=params, json=json_body, what=what)

    def list(self) -> list[JsonDict]:
        """Every webhook of the server, following the pages."""
        found: list[JsonDict] = []
        token: str | None = None
        while True:
            params: dict[str, object] = {"max_results": PAGE_SIZE}
            if token:
                params["page_token"] = token
            answer = self._call("GET", params=params)
            found += list(answer.get("webhooks", []))
            token = answer.get("next_page_token") or None
            if not token:
                return found

    def get(self, webhook_id: str) -> JsonDict:
        return dict(self._call("GET", webhook_id, what=f"webhook {webhook_id}").get("webhook", {}))

    def create(self, name: str, url: str, events: Sequence[JsonDict], *, description: str | None = None,
               status: str | None = None, secret: str | None = None) -> JsonDict:
        """A new webhook; the server refuses a URL it may not post to (scheme, private address)."""
        body: JsonDict = {"name": name, "url": url, "events": [dict(e) for e in events]}
        if description:
            body["description"] = description
        if status:
            body["status"] = status
        if secret:
            body["secret"] = secret
        return dict(self._call("POST", json_body=body, what=f"webhook '{name}'").get("webhook", {}))

    def set_secret(self, webhook_id: str, secret: str) -> JsonDict:
        """Replace the webhook's signing secret (nothing else changes)."""
        answer = self._call("PATCH", webhook_id, json_body={"secret": secret}, what=f"webhook {webhook_id}")
        return dict(answer.get("webhook", {}))

    def delete(self, webhook_id: str) -> None:
        self._call("DELETE", webhook_id, what=f"webhook {webhook_id}")

    def test(self, webhook_id: str, event: JsonDict | None = None) -> JsonDict:
        """Have the server post an example payload of `event` (default: the webhook's first) to the URL."""
        body: JsonDict = {"event": dict(event)} if event else {}
        return dict(self._call("POST", f"{webhook_id}/test", json_body=body, what=f"webhook {webhook_id}")
                    .get("result", {}))
