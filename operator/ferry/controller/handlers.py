"""kopf handlers: the watch streams of our resources and their Jobs, handed to the `Controller`.

Level-based on purpose: every handler is a plain watch-event handler (``kopf.on.event``), and
the controller derives what to do from the object as it is now. kopf keeps no bookkeeping on
users' objects (no annotations, no finalizers), a new object costs one Job create, one status
patch and one Event, and a restarted operator converges from the initial listing alone: Jobs
have deterministic names (a second create is a 409) and a finished Job is marked
``ferry.dev/recorded`` once its result is in the resource's status.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any

import kopf

from ferry.api import GROUP, Kind
from ferry.api.resources import KINDS, MLFLOW_EXPORT, MLFLOW_IMPORT
from ferry.controller.executor import Executor
from ferry.controller.jobs import KIND_LABEL
from ferry.controller.kube import Kube
from ferry.controller.metrics import Metrics
from ferry.controller.runtime import Controller
from ferry.controller.settings import OperatorSettings
from ferry.controller.stopping import request_restart
from ferry.supervisor import restarts_so_far

log = logging.getLogger("ferry.controller")
CRD_POLL_SECONDS = 5.0
RESUMED = None  # kopf's event type for objects found by the initial listing (after a restart)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # No cluster-wide reads of CustomResourceDefinitions and Namespaces: the CRDs are installed
    # before the operator starts, and namespaces are named (no globs). That keeps RBAC minimal.
    settings.scanning.disabled = True
    settings.execution.max_workers = 48
    settings.watching.server_timeout = 600
    operator_settings = OperatorSettings()
    memo.metrics = Metrics(watch_restarts=restarts_so_far())
    kube = Kube()
    memo.controller = Controller(kube, operator_settings, executor=Executor(kube, metrics=memo.metrics))
    if operator_settings.metrics_port:
        try:
            memo.metrics.serve(operator_settings.metrics_port)
        except OSError as err:  # the work matters more than its metrics
            log.error("metrics are not served: port %s: %s", operator_settings.metrics_port, err.strerror)


@kopf.on.startup()
async def look_for_missing_crds(memo: kopf.Memo, **_: Any) -> None:
    """Watch every kind, including one whose CRD is installed after the operator started.

    kopf looks up the kinds to watch once, when it starts, and (scanning disabled) never watches
    a kind whose CRD was missing then, even once it is installed. So a missing CRD is one ERROR
    line, the other kinds are watched meanwhile, and once the API server serves them all the
    operator starts again (`ferry.controller.stopping.request_restart`), watching everything.
    """
    kube = memo.controller.kube
    missing = await asyncio.to_thread(kube.unserved, KINDS)
    if missing:
        log.error("the API server does not serve %s (is the CRD installed?); the other kinds are watched, "
                  "and every kind once it does", _names(missing))
        memo.crd_looker = asyncio.create_task(_restart_once_served(kube, missing))


async def _restart_once_served(kube: Kube, missing: list[Kind]) -> None:
    while True:
        await asyncio.sleep(CRD_POLL_SECONDS)
        try:
            if not await asyncio.to_thread(kube.unserved, missing):
                request_restart(f"the API server now serves {_names(missing)}")
                return
        except Exception as err:  # an API server away for a moment: look again at the next poll
            log.debug("looking for the missing CRDs: %s", err)


def _names(kinds: list[Kind]) -> str:
    return ", ".join(kind.crd_name for kind in kinds)


def counted(handler: Callable[..., None]) -> Callable[..., None]:
    """Count a handler run that raised in ``ferry_reconcile_errors_total``, then let kopf see it."""

    @functools.wraps(handler)
    def run(*args: Any, memo: kopf.Memo, **kwargs: Any) -> None:
        try:
            handler(*args, memo=memo, **kwargs)
        except Exception:
            memo.metrics.errors.labels(handler.__name__).inc()
            raise

    return run


def one_shot(spec: dict[str, Any], **_: Any) -> bool:
    return not spec.get("schedule")


def scheduled(spec: dict[str, Any], **_: Any) -> bool:
    return bool(spec.get("schedule"))


@kopf.on.event(GROUP, "mlflowexports", when=one_shot)
@counted
def export_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if type != "DELETED":
        memo.controller.reconcile(MLFLOW_EXPORT, dict(body), look_at_job=type is RESUMED)


@kopf.on.event(GROUP, "mlflowimports")
@counted
def import_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if type != "DELETED":
        memo.controller.reconcile(MLFLOW_IMPORT, dict(body), look_at_job=type is RESUMED)


@kopf.on.event("batch", "v1", "jobs", labels={KIND_LABEL: kopf.PRESENT})
@counted
def job_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.controller.on_job(type, dict(body))


@kopf.on.event("", "v1", "pods", labels={KIND_LABEL: kopf.PRESENT})
@counted
def pod_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if type != "DELETED":
        memo.controller.on_pod(dict(body))
