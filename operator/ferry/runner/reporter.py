"""Live progress of a Job, patched into its own resource's ``status.progress``.

Throttled (at most one patch per interval, plus the final state), best effort (a patch refused
for longer than a restarted API server takes to load its RBAC and CRDs is reported once and the work goes on), and through the Job's ServiceAccount, which may only
``patch`` the ``<kind>/status`` of ferry's resources. An API server that cannot be reached for a
while (restarted, upgraded) only delays the patches: the state is sent again with the next
progress, and the final state is retried for up to `final_retry_seconds`, so a resource never
ends with the progress of the moment the API server went away.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from ferry.api import BY_KIND
from ferry.api.status import BaseStatus, ProgressStatus
from ferry.progress import Progress

Patcher = Callable[[dict[str, Any]], None]


def status_patcher(kind: str, namespace: str, name: str) -> Patcher:
    """A function that merge-patches the resource's status through the Kubernetes API."""
    import kubernetes

    from ferry.kube import load_config, patch_status

    api = kubernetes.client.CustomObjectsApi(load_config())

    def send(status: dict[str, Any]) -> None:
        patch_status(api, BY_KIND[kind], namespace, name, status, timeout=10)

    return send


REFUSAL_GRACE_SECONDS = 30.0


class ProgressReporter:
    """A `ProgressSink` that patches at most every `interval` seconds; `close` sends the last state."""

    def __init__(self, send: Patcher, interval: float = 2.0, clock: Callable[[], float] = time.monotonic,
                 final_retry_seconds: float = 30.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self._send = send
        self._interval = interval
        self._clock = clock
        self._sleep = sleep
        self._final_retry_seconds = final_retry_seconds
        self._lock = threading.Lock()
        self._last_sent = float("-inf")
        self._pending: Progress | None = None
        self._broken = False
        self._warned = False
        self._refused_since: float | None = None  # when the API server began refusing the patches

    def __call__(self, progress: Progress) -> None:
        with self._lock:
            self._pending = progress
            if self._clock() - self._last_sent < self._interval:
                return
            self._flush()

    def close(self) -> None:
        with self._lock:
            deadline = self._clock() + self._final_retry_seconds
            while not self._flush() and self._clock() < deadline:
                self._sleep(1.0)

    def _flush(self) -> bool:
        """Send the pending state; False when it is still pending (the API server was unreachable)."""
        if self._pending is None or self._broken:
            return True
        p, self._pending = self._pending, None
        self._last_sent = self._clock()
        status = BaseStatus(progress=ProgressStatus.of(p.total, p.done, p.failed))
        try:
            self._send(status.wire())
        except Exception as err:  # progress is informative; never let it fail the work
            transient = _unreachable(err) or self._briefly_refused(err)
            if transient and self._pending is None:
                self._pending = p  # sent again with the next progress, or by close()
            else:
                self._broken = not transient
            if not self._warned:
                self._warned = True
                then = "will retry" if transient else "continuing without it"
                print(f"warning: cannot report progress ({type(err).__name__}: {err}); {then}", file=sys.stderr)
            return not transient
        self._refused_since = None
        return True

    def _briefly_refused(self, err: Exception) -> bool:
        """A 401/403/404 within `REFUSAL_GRACE_SECONDS` of the first: an API server that has just
        started answers before its RBAC caches are filled (403) and before it has loaded the CRDs
        (404 for our resource). Refused for longer, the refusal is real."""
        if getattr(err, "status", None) not in (401, 403, 404):
            return False
        now = self._clock()
        if self._refused_since is None:
            self._refused_since = now
        return now - self._refused_since < REFUSAL_GRACE_SECONDS


def _unreachable(err: Exception) -> bool:
    """The API server did not answer, or answered that it is unavailable: worth sending again."""
    import urllib3

    status = getattr(err, "status", None)
    return isinstance(err, ConnectionError | TimeoutError | urllib3.exceptions.HTTPError) or status in (
        429, 500, 502, 503, 504)
