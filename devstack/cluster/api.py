"""A small REST client for the API server, speaking plain JSON dicts.

The local kubelet and the harness read and write raw objects (camelCase, exactly as the API
serves them); the generated `kubernetes` client's models would only get in the way there.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

Obj = dict[str, Any]


class ApiError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"API server answered {status}: {body[:300]}")
        self.status = status
        self.body = body


class Api:
    """Bearer-token access to one API server; thread-safe (one requests session per thread)."""

    def __init__(self, server: str, token: str, ca_file: Path, timeout: float = 30.0) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.ca_file = ca_file
        self.timeout = timeout
        self._local = threading.local()

    @property
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {self.token}"
            session.verify = str(self.ca_file)
            # REQUESTS_CA_BUNDLE and proxy variables must not override our CA or reach loopback.
            session.trust_env = False
            self._local.session = session
        return session

    def request(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None,
                content_type: str = "application/json", ok_missing: bool = False) -> Obj | None:
        data = None if body is None else json.dumps(body)
        response = self._session.request(method, self.server + path, data=data, params=params,
                                         headers={"Content-Type": content_type}, timeout=self.timeout)
        if ok_missing and response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise ApiError(response.status_code, response.text)
        return response.json() if response.content else {}

    def get(self, path: str, **params: Any) -> Obj | None:
        """The object at `path`, or None when it does not exist."""
        return self.request("GET", path, params=params or None, ok_missing=True)

    def post(self, path: str, body: Obj) -> Obj:
        return self.request("POST", path, body) or {}

    def merge_patch(self, path: str, body: Obj) -> Obj | None:
        return self.request("PATCH", path, body, content_type="application/merge-patch+json", ok_missing=True)

    def put(self, path: str, body: Obj) -> Obj | None:
        return self.request("PUT", path, body, ok_missing=True)

    def delete(self, path: str, body: Obj | None = None) -> Obj | None:
        return self.request("DELETE", path, body, ok_missing=True)

    def delete_pod_now(self, namespace: str, name: str, uid: str) -> None:
        """What a kubelet does once a pod's processes are gone: remove it with no further grace.

        The uid precondition keeps a newer pod of the same name safe.
        """
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0, "preconditions": {"uid": uid}}
        self.delete(f"/api/v1/namespaces/{namespace}/pods/{name}", body)

    def watch(self, path: str, resource_version: str, timeout_seconds: int = 300) -> Iterator[Obj]:
        """Watch events from `resource_version` on; ends when the server closes the stream.

        A `410 Gone` arrives as an ERROR event: the caller lists again.
        """
        params = {"watch": "1", "resourceVersion": resource_version, "allowWatchBookmarks": "true",
                  "timeoutSeconds": str(timeout_seconds)}
        with self._session.get(self.server + path, params=params, stream=True,
                               timeout=(self.timeout, timeout_seconds + 30)) as response:
            if response.status_code >= 400:
                raise ApiError(response.status_code, response.text)
            for line in response.iter_lines():
                if line:
                    yield json.loads(line)


def readyz(server: str, token: str, ca_file: Path) -> bool:
    """True once the API server reports ready (all post-start hooks done, RBAC bootstrapped)."""
    try:
        with requests.Session() as session:
            session.trust_env = False
            response = session.get(f"{server}/readyz", headers={"Authorization": f"Bearer {token}"},
                                   verify=str(ca_file), timeout=3)
    except requests.RequestException:
        return False
    return response.status_code == 200
