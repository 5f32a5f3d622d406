"""Credentials go only to the host they were given for, across redirects too.

A hostile front of the real source server (the test's own, on 127.0.0.1) redirects one endpoint
to a listening server of the test on another port and another endpoint to a path of its own
origin. The redirect within the origin is followed; the other is one line naming both origins, and
the listening server receives nothing: not the MLflow token, not the Kiroframe profiling token.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests

from devstack.mlflow_server import MlflowServer
from ferry.errors import ServerError
from ferry.kiroframe.push import ImportClient, Redirected
from ferry.tracking import TrackingClient
from ferry.tracking.settings import TrackingSettings

TOKEN = "mlflow-token-never-elsewhere"


@dataclass
class Server:
    """A threaded HTTP server on 127.0.0.1 answering with `handle(handler)`; records what reached it."""

    handle: object
    seen: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                outer.seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
                outer.handle(self)  # type: ignore[operator]

            do_POST = do_GET

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def answer(handler: http.server.BaseHTTPRequestHandler, status: int, body: bytes = b"",
           headers: dict[str, str] | None = None) -> None:
    handler.send_response(status)
    for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


@pytest.fixture
def trap() -> Iterator[Server]:
    """Where a hostile server sends the Job: it must never hear from us."""
    server = Server(lambda h: answer(h, 200, b"{}"))
    yield server
    server.stop()


@pytest.fixture
def hostile(mlflow_src: MlflowServer, trap: Server) -> Iterator[Server]:
    """The source server behind a front that redirects get-by-name elsewhere and search to itself."""
    def handle(h: http.server.BaseHTTPRequestHandler) -> None:
        if h.path.startswith("/api/2.0/mlflow/experiments/get-by-name"):
            return answer(h, 302, headers={"Location": f"{trap.url}/steal"})
        if h.path.startswith("/moved/"):
            body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
            got = requests.request(h.command, f"{mlflow_src.uri}{h.path.removeprefix('/moved')}", data=body,
                                   headers={"Content-Type": h.headers.get("Content-Type", "application/json")},
                                   timeout=30)
            return answer(h, got.status_code, got.content, {"Content-Type": "application/json"})
        if h.path.startswith("/api/2.0/mlflow/experiments/search"):
            return answer(h, 307, headers={"Location": f"/moved{h.path}"})
        return answer(h, 404)

    server = Server(handle)
    yield server
    server.stop()


def test_a_redirect_to_another_host_is_refused_and_one_within_the_origin_is_followed(
        hostile: Server, trap: Server) -> None:
    client = TrackingClient(hostile.url, TrackingSettings(token=TOKEN, max_attempts=1))
    assert any(e["name"] == "Default" for e in client.search_experiments(view_type="ALL"))
    moved = [seen for seen in hostile.seen if seen["path"].startswith("/moved/")]
    assert moved and moved[0]["authorization"] == f"Bearer {TOKEN}"  # followed, with the token: same origin

    with pytest.raises(ServerError) as refused:
        client.get_experiment_by_name("anything")
    assert str(refused.value).splitlines() == [
        f"MLflow at {hostile.url}: {hostile.url} redirected to {trap.url} (HTTP 302); not followed: credentials go "
        "only to the host they were given for"]
    assert trap.seen == []


def test_kiroframe_never_sends_its_token_to_a_redirect_target(trap: Server) -> None:
    kiroframe = Server(lambda h: answer(h, 308, headers={"Location": f"{trap.url}/arcee/v2/import"}))
    try:
        client = ImportClient(kiroframe.url, "kf-token-never-elsewhere", "http://mlflow:5000", retry_seconds=1.0,
                              backoff_seconds=0.05, backoff_max_seconds=0.1, timeout=5.0)
        with pytest.raises(Redirected) as refused:
            client.check_token()
        assert f"{kiroframe.url} redirected to {trap.url} (HTTP 308); not followed" in refused.value.message
        with pytest.raises(Redirected):
            client.send(1, {"id": "r1"})
        assert trap.seen == []
        assert all(seen["x-api-key"] == "kf-token-never-elsewhere" for seen in kiroframe.seen)
    finally:
        kiroframe.stop()
