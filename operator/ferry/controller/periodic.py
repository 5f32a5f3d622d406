"""What the operator does on its own clock, without putting finalizers on anyone's resources.

kopf timers make every object they run on carry a finalizer (kopf must stop the timer before the
object goes), so with the operator down or uninstalled, ``kubectl delete`` hangs and namespace
deletion stalls; a CronJob or a Velero Schedule never does that. kopf indexes need no finalizer:
they are kept from the watch stream alone. So the indexes below hold what needs a periodic look
(schedules, one-shot resources not started yet — imports waiting for their export, a start that
failed on a passing error — and Jobs whose pod has not started, which may time out) and ONE operator-wide loop looks at them every
``schedule_tick_seconds``.

The operator runs as a single replica (``--standalone``); the loop does not pause for kopf peering.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import kopf

from ferry.api import GROUP
from ferry.api.resources import BY_KIND, KIROFRAME_SYNC, MLFLOW_EXPORT, MLFLOW_IMPORT, MLFLOW_MIRROR
from ferry.controller.handlers import one_shot, scheduled
from ferry.controller.metrics import Seen
from ferry.controller.resource import Resource
from ferry.outcome import Phase

log = logging.getLogger("ferry.controller")
KOPF_FINALIZER = kopf.OperatorSettings().persistence.finalizer
"""The marker kopf timers put on objects (older versions of this operator had timers)."""


@dataclass(frozen=True)
class Work:
    """One object's periodic look: ``action(body)``."""

    action: Callable[[dict[str, Any]], None]
    body: dict[str, Any]

    @property
    def name(self) -> str:
        meta = self.body["metadata"]
        return f"{self.body.get('kind')} {meta.get('namespace')}/{meta.get('name')}"

    def run(self) -> None:
        self.action(self.body)


def _unstarted(status: dict[str, Any], **_: Any) -> bool:
    phase = status.get("phase")
    return not status.get("jobName") and (phase is None or not Phase(phase).terminal)


def _unstarted_one_shot(spec: dict[str, Any], status: dict[str, Any], **_: Any) -> bool:
    return one_shot(spec) and _unstarted(status)


def _starting(spec: dict[str, Any], status: dict[str, Any], **_: Any) -> bool:
    """A one-shot resource whose Job exists but whose pod has not started: it may never start."""
    return one_shot(spec) and bool(status.get("jobName")) and status.get("phase") == Phase.PENDING


@kopf.index(GROUP, "kiroframesyncs")
async def scheduled_syncs(body: kopf.Body, memo: kopf.Memo, **_: Any) -> Work:
    return Work(partial(memo.controller.tick, KIROFRAME_SYNC), dict(body))


@kopf.index(GROUP, "mlflowmirrors")
async def scheduled_mirrors(body: kopf.Body, memo: kopf.Memo, **_: Any) -> Work:
    return Work(partial(memo.controller.tick, MLFLOW_MIRROR), dict(body))


@kopf.index(GROUP, "mlflowexports", when=scheduled)
async def scheduled_exports(body: kopf.Body, memo: kopf.Memo, **_: Any) -> Work:
    return Work(partial(memo.controller.tick, MLFLOW_EXPORT), dict(body))


@kopf.index(GROUP, "mlflowexports", when=_unstarted_one_shot)
async def unstarted_exports(body: kopf.Body, memo: kopf.Memo, **_: Any) -> Work:
    return Work(partial(memo.controller.look_again, MLFLOW_EXPORT), dict(body))


@kopf.index(GROUP, "mlflowimports", when=_unstarted)
async def unstarted_imports(body: kopf.Body, memo: kopf.Memo, **_: Any) -> Work:
    return Work(partial(memo.controller.look_again, MLFLOW_IMPORT), dict(body))


@kopf.index(GROUP, "mlflowexports", when=_starting)
async def starting_exports(body: kopf.Body, memo: kopf.Memo, **_: Any) -> Work:
    return Work(partial(memo.controller.look_again, MLFLOW_EXPORT), dict(body))


@kopf.index(GROUP, "mlflowimports", when=_starting)
async def starting_imports(body: kopf.Body, memo: kopf.Memo, **_: Any) -> Work:
    return Work(partial(memo.controller.look_again, MLFLOW_IMPORT), dict(body))


@kopf.index(GROUP, "kiroframesyncs")
@kopf.index(GROUP, "mlflowmirrors")
@kopf.index(GROUP, "mlflowexports")
@kopf.index(GROUP, "mlflowimports")
async def inventory(body: kopf.Body, **_: Any) -> Seen:
    """Every resource as the watch last saw it, for the metrics (read when Prometheus scrapes)."""
    return Seen.of(Resource(BY_KIND[body["kind"]], dict(body)))


def everything_seen(index: Mapping[Any, Collection[Seen]]) -> Callable[[], list[Seen]]:
    """A reader of `index` safe from the metrics server's thread while the watch changes it."""

    def read() -> list[Seen]:
        for _ in range(3):
            try:
                return [seen for store in list(index.values()) for seen in list(store)]
            except RuntimeError:  # changed while being copied: read again
                continue
        return []

    return read


Indexes = Iterable[Mapping[Any, Collection[Work]]]  # kopf.Index[Any, Work] is one


async def look(indexes: Indexes, errors: Any = None) -> None:
    """One look at everything indexed, in threads (the Kubernetes client blocks); one failure
    is logged and retried at the next look, as a timer would, without holding back the others."""
    work = [entry for index in indexes for store in index.values() for entry in store]
    results = await asyncio.gather(*(asyncio.to_thread(entry.run) for entry in work), return_exceptions=True)
    for entry, result in zip(work, results, strict=True):
        if isinstance(result, Exception) and errors is not None:
            errors.labels("periodic").inc()
        if isinstance(result, kopf.TemporaryError):
            log.warning("%s: %s", entry.name, result)
        elif isinstance(result, Exception):
            log.error("%s: periodic look failed", entry.name, exc_info=result)


async def look_forever(indexes: Indexes, interval: float, errors: Any = None) -> None:
    while True:
        await look(indexes, errors)
        await asyncio.sleep(interval)


@kopf.on.startup()
async def start_looking(
    memo: kopf.Memo,
    scheduled_syncs: kopf.Index[Any, Work],
    scheduled_mirrors: kopf.Index[Any, Work],
    scheduled_exports: kopf.Index[Any, Work],
    unstarted_exports: kopf.Index[Any, Work],
    unstarted_imports: kopf.Index[Any, Work],
    starting_exports: kopf.Index[Any, Work],
    starting_imports: kopf.Index[Any, Work],
    inventory: kopf.Index[Any, Seen],
    **_: Any,
) -> None:
    """The indexes are live views: the loop sees objects come, change and go as kopf watches."""
    memo.metrics.watch(everything_seen(inventory))
    indexes = [scheduled_syncs, scheduled_mirrors, scheduled_exports, unstarted_exports, unstarted_imports, starting_exports,
               starting_imports]
    interval = memo.controller.settings.schedule_tick_seconds
    memo.looker = asyncio.create_task(look_forever(indexes, interval, memo.metrics.errors))


@kopf.on.cleanup()
async def stop_looking(memo: kopf.Memo, **_: Any) -> None:
    looker: asyncio.Task[None] | None = memo.get("looker")
    if looker is not None:
        looker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await looker


# --- objects left with a finalizer by an older version ------------------------------------------


def _has_kopf_finalizer(meta: kopf.Meta, **_: Any) -> bool:
    return KOPF_FINALIZER in (meta.get("finalizers") or [])


@kopf.on.event(GROUP, "kiroframesyncs", when=_has_kopf_finalizer)
@kopf.on.event(GROUP, "mlflowmirrors", when=_has_kopf_finalizer)
@kopf.on.event(GROUP, "mlflowexports", when=_has_kopf_finalizer)
@kopf.on.event(GROUP, "mlflowimports", when=_has_kopf_finalizer)
def release_finalizer(type: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Older versions ran timers, so their objects carry kopf's finalizer; nothing here needs it,
    and left in place it would make deleting them hang whenever the operator is away."""
    if type == "DELETED":
        return
    meta = body["metadata"]
    memo.controller.kube.remove_finalizer(
        BY_KIND[body["kind"]], meta["namespace"], meta["name"], list(meta["finalizers"]), KOPF_FINALIZER
    )
