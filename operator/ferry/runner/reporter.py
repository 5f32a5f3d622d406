"""Live progress of a Job, patched into its own resource's ``status.progress``.

Throttled (at most one patch per interval, plus the final state), best effort (a refused patch is
reported once and the work goes on), and through the Job's ServiceAccount, which may only
``patch`` the ``<kind>/status`` of ferry's resources.
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


class ProgressReporter:
    """A `ProgressSink` that patches at most every `interval` seconds; `close` sends the last state."""

    def __init__(self, send: Patcher, interval: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._send = send
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._last_sent = float("-inf")
        self._pending: Progress | None = None
        self._broken = False

    def __call__(self, progress: Progress) -> None:
        with self._lock:
            self._pending = progress
            if self._clock() - self._last_sent < self._interval:
                return
            self._flush()

    def close(self) -> None:
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        if self._pending is None or self._broken:
            return
        p, self._pending = self._pending, None
        self._last_sent = self._clock()
        status = BaseStatus(progress=ProgressStatus.of(p.total, p.done, p.failed))
        try:
            self._send(status.wire())
        except Exception as err:  # progress is informative; never let it fail the work
            self._broken = True
            print(f"warning: cannot report progress ({type(err).__name__}: {err}); continuing", file=sys.stderr)
