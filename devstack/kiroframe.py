"""A local stand-in for Kiroframe's import API: a real HTTP server on 127.0.0.1.

Kiroframe is a SaaS, so the sync engine is tested, demonstrated and benchmarked against this
server instead. It speaks the same protocol as the service (``POST /arcee/v2/import`` with an
``x-api-key`` header), checks the token, validates each body, stores what it accepts and keeps
one copy per (source id, import type, key), as the service deduplicates re-sent records.

It can misbehave on request, so the engine's retries are tested against real sockets: fail the
next N requests with 503 or 429 + ``Retry-After``, drop the connection without an answer, fail
every request for a stretch of time (an outage, optionally once N records were accepted), or
hold every request after the N-th accepted one until released (to kill a client mid-push).

From a shell (prints its URL, runs until Ctrl-C)::

    python -m devstack.kiroframe --port 8080 --token T

Another process can read and steer it over ``/_standin/``: ``GET records``, ``GET deliveries``,
``POST fail {"count", "status", "retry_after"}``, ``POST reset``.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devstack.procs import free_port, serve_until_interrupted

IMPORT_PATH = "/arcee/v2/import"
CONTROL_PREFIX = "/_standin/"
DROP_CONNECTION = 0  # a "status" for fail_next: close the socket without answering

_SOURCE_ID = re.compile(r"^[0-9a-f]{10}$")


def record_key(body: dict[str, Any]) -> tuple[str, int, str]:
    """What the service deduplicates on: the source, the kind of line, and the line's identity."""
    kind = body["import_type"]
    line = body["line"]
    ident = {1: lambda: line["experiment_id"], 2: lambda: line["run_id"], 3: lambda: "models"}[kind]()
    return body["import_source_id"], kind, str(ident)


def validate(body: Any) -> str | None:
    """Why `body` is not an import request, or None when it is one."""
    if not isinstance(body, dict):
        return "body must be a JSON object"
    expected = {"import_source", "import_source_id", "import_type", "owner_id", "line"}
    if set(body) != expected:
        return f"body keys must be {sorted(expected)}"
    if body["import_source"] != "mlflow":
        return "import_source must be 'mlflow'"
    if not isinstance(body["import_source_id"], str) or not _SOURCE_ID.match(body["import_source_id"]):
        return "import_source_id must be 10 hex characters"
    if body["owner_id"] is not None and not isinstance(body["owner_id"], str):
        return "owner_id must be null or a string"
    kind, line = body["import_type"], body["line"]
    if kind in (1, 2):
        needed = "experiment_id" if kind == 1 else "run_id"
        if not isinstance(line, dict) or not line.get(needed):
            return f"line of import_type {kind} must be an object with {needed}"
    elif kind == 3:
        if not isinstance(line, list) or not all(isinstance(m, dict) and m.get("name") for m in line):
            return "line of import_type 3 must be a list of models with names"
    else:
        return "import_type must be 1, 2 or 3"
    return None


@dataclass
class _Faults:
    queue: deque[tuple[int, float | None]] = field(default_factory=deque)  # (status, retry_after) each
    hold_after: int | None = None
    released: threading.Event = field(default_factory=threading.Event)
    outage: _Outage | None = None


@dataclass
class _Outage:
    seconds: float
    status: int
    retry_after: float | None
    after: int  # accepted records before it begins
    ends: float | None = None  # monotonic time, set by the first request it fails


@dataclass
class KiroframeStandIn:
    """The server, running in a thread of this process; `records()` shows what it accepted."""

    token: str
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._faults = _Faults()
        self._store: dict[tuple[str, int, str], dict[str, Any]] = {}
        self._deliveries: Counter[tuple[str, int, str]] = Counter()
        self._requests = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> KiroframeStandIn:
        self._server = ThreadingHTTPServer((self.host, self.port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="kiroframe-stand-in",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- what tests read ---------------------------------------------------------------------

    def records(self, import_type: int | None = None) -> list[dict[str, Any]]:
        """Accepted bodies, one per key (the latest), in the order their keys first arrived."""
        with self._lock:
            return [b for k, b in self._store.items() if import_type is None or k[1] == import_type]

    def deliveries(self) -> Counter[tuple[str, int, str]]:
        """How many times each key was accepted: more than one means a client sent it again."""
        with self._lock:
            return Counter(self._deliveries)

    @property
    def request_count(self) -> int:
        """Every request that reached the import path, failed or not."""
        with self._lock:
            return self._requests

    def reset(self) -> None:
        with self._lock:
            self._store.clear()
            self._deliveries.clear()
            self._requests = 0
            self._faults = _Faults()

    # -- misbehaviour ------------------------------------------------------------------------

    def fail_next(self, n: int, status: int = 503, retry_after: float | None = None) -> None:
        """Answer the next `n` import requests with `status` (0: drop the connection instead).

        Calls queue up: ``fail_next(2, 503); fail_next(1, 429, 0.5)`` plays both, in that order.
        """
        with self._lock:
            self._faults.queue.extend([(status, retry_after)] * n)

    def fail_for(self, seconds: float, status: int = 503, retry_after: float | None = None, *,
                 after: int = 0) -> None:
        """Once `after` records in total were accepted, answer every import request with `status`
        (0: drop the connection) for `seconds` from the first request it fails, then serve again.
        """
        with self._lock:
            self._faults.outage = _Outage(seconds, status, retry_after, after)

    def end_outage(self) -> None:
        """End the outage `fail_for` began, now: the next request is served."""
        with self._lock:
            self._faults.outage = None

    def hold_after(self, n: int) -> None:
        """Once `n` records in total were accepted, keep every further request waiting."""
        with self._lock:
            self._faults.hold_after = n
            self._faults.released.clear()

    def release(self) -> None:
        """Let held requests go: each is then dropped unanswered, as if the client had died."""
        with self._lock:
            self._faults.hold_after = None
            self._faults.released.set()

    # -- request handling (called from the server's threads) -----------------------------------

    def _admit(self) -> tuple[int, float | None] | None:
        """Decide a request's fate: a fault to play (after a hold, if one applies), or None to serve it."""
        with self._lock:
            self._requests += 1
            faults = self._faults
            if faults.queue:
                status, retry_after = faults.queue.popleft()
                return status, retry_after
            outage = faults.outage
            if outage is not None and sum(self._deliveries.values()) >= outage.after:
                now = time.monotonic()
                if outage.ends is None:
                    outage.ends = now + outage.seconds
                if now < outage.ends:
                    return outage.status, outage.retry_after
                faults.outage = None
            held = faults.hold_after is not None and sum(self._deliveries.values()) >= faults.hold_after
            released = faults.released
        if held:
            released.wait()
            return DROP_CONNECTION, None
        return None

    def _accept(self, body: dict[str, Any]) -> tuple[str, int, str]:
        key = record_key(body)
        with self._lock:
            self._store.pop(key, None)
            self._store[key] = body
            self._deliveries[key] += 1
        return key

    def _control(self, name: str, payload: dict[str, Any]) -> Any:
        if name == "records":
            return self.records()
        if name == "deliveries":
            return [{"key": list(k), "count": c} for k, c in self.deliveries().items()]
        if name == "fail":
            self.fail_next(int(payload.get("count", 1)), int(payload.get("status", 503)),
                           payload.get("retry_after"))
            return {"ok": True}
        if name == "reset":
            self.reset()
            return {"ok": True}
        return None


def _handler_for(standin: KiroframeStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms ACK wait

        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read records instead
            pass

        def _reply(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self) -> None:
            self._serve_control()

        def do_POST(self) -> None:
            if self.path.startswith(CONTROL_PREFIX):
                self._serve_control()
                return
            if self.path != IMPORT_PATH:
                self._body()
                self._reply(404, {"error": f"no such path {self.path}"})
                return
            raw = self._body()
            fault = standin._admit()
            if fault is not None:
                status, retry_after = fault
                if status == DROP_CONNECTION:
                    self.close_connection = True
                    self.connection.close()
                    return
                headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
                self._reply(status, {"error": "unavailable, try again"}, headers)
                return
            self._serve_import(raw)

        def _serve_import(self, raw: bytes) -> None:
            if self.headers.get("x-api-key") != standin.token:
                self._reply(401, {"error": "invalid profiling token"})
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self._reply(400, {"error": "body is not JSON"})
                return
            problem = validate(body)
            if problem is not None:
                self._reply(400, {"error": problem})
                return
            key = standin._accept(body)
            self._reply(201, {"import_type": key[1], "key": key[2], "status": "accepted"})

        def _serve_control(self) -> None:
            raw = self._body() if self.command == "POST" else b""
            payload = json.loads(raw) if raw else {}
            result = standin._control(self.path[len(CONTROL_PREFIX):], payload)
            if result is None:
                self._reply(404, {"error": f"no such path {self.path}"})
            else:
                self._reply(200, result)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--token", required=True, help="the profiling token to accept")
    args = parser.parse_args()
    standin = KiroframeStandIn(token=args.token, port=args.port or free_port()).start()
    print(standin.url, flush=True)
    serve_until_interrupted(standin.stop)


if __name__ == "__main__":
    main()
