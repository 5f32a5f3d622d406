"""The process the operator's pod runs: it keeps the operator proper running as its child.

kopf ends the whole operator when one of its watches gets an answer it does not retry, and a
kube-apiserver that has just restarted (an upgrade, a crash) gives exactly such answers for a few
seconds: ``404 page not found`` for every custom resource until it has loaded the CRDs again, or
``403`` for longer than kopf retries while it fills its RBAC caches. CRDs deleted and created again
by an upgrade look the same. kopf then stops, and not always completely: a watch caught between
its retries can wait forever for credentials that the stopped operator no longer provides, so the
process neither works nor exits.

So ``ferry operator`` is two processes. This one (`supervise`) starts the operator proper as a
child (`ferry.controller.stopping.run_once`), forwards SIGTERM and SIGINT to it, and when the
child exits with `EXIT_WATCHES_LOST`, starts it again after a capped backoff; any other exit is the
operator's own, and ends this process with the same code. Nothing is missed by a restart: the
handlers are level-based and kopf lists every object again when it starts. Each child is told in
`RESTARTS_ENV` how many restarts came before it, for ``ferry_watch_restarts_total``.

Kept light on purpose (no kopf, no Kubernetes client): it lives beside the operator in its pod
for as long as the pod runs, within the same memory limit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable

EXIT_WATCHES_LOST = 75  # EX_TEMPFAIL: the API server ended the watches; worth starting again
RESTARTS_ENV = "FERRY_WATCH_RESTARTS"
"""Set by `supervise` for its child: how many times the operator was started again before it."""
FIRST_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 30.0
HEALTHY_SECONDS = 300.0
"""A child that ran this long was healthy: the next restart waits the first delay again."""


def supervised() -> bool:
    """Whether this process is the child of `supervise` (so it runs the operator proper)."""
    return RESTARTS_ENV in os.environ


def restarts_so_far() -> int:
    """How many times `supervise` started the operator again before this process (0 unsupervised)."""
    try:
        return max(0, int(os.environ.get(RESTARTS_ENV, "0")))
    except ValueError:
        return 0


def restart_delay(failures: int) -> float:
    """Seconds to wait before the `failures`-th restart in a row: 1, 2, 4, ... up to 30."""
    return min(MAX_DELAY_SECONDS, FIRST_DELAY_SECONDS * 2 ** (failures - 1))


def supervise(argv: list[str], clock: Callable[[], float] = time.monotonic) -> int:
    """Run `argv` (this command, as the child) until it exits for a reason other than lost watches."""
    stop = threading.Event()
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, _frame: object) -> None:
        stop.set()
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    previous = {signum: signal.signal(signum, forward) for signum in (signal.SIGTERM, signal.SIGINT)}
    restarts = failures = 0
    try:
        while True:
            started = clock()
            child = subprocess.Popen(argv, env={**os.environ, RESTARTS_ENV: str(restarts)})
            code = child.wait()
            if stop.is_set() or code != EXIT_WATCHES_LOST:
                return code if code >= 0 else 128 - code  # killed by a signal: as a shell says it
            restarts += 1
            failures = 1 if clock() - started >= HEALTHY_SECONDS else failures + 1
            if stop.wait(restart_delay(failures)):
                return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
