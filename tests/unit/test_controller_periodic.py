"""No finalizers on users' objects, and the one loop that replaced kopf timers."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

import ferry.controller  # noqa: F401  (registers the handlers)
from ferry.controller.periodic import Work, look


def test_no_registered_handler_makes_kopf_add_a_finalizer() -> None:
    registry = kopf.get_default_registry()
    # timers and daemons always require one (kopf must stop them before the object goes)
    assert [h.id for h in registry._spawning.get_all_handlers()] == []
    blocking = [h.id for h in registry._changing.get_all_handlers() if h.requires_finalizer]
    assert blocking == []  # e.g. a mandatory @kopf.on.delete
    indexed = {h.selector.any_name for h in registry._indexing.get_all_handlers() if h.selector}
    assert indexed == {"kiroframesyncs", "mlflowexports", "mlflowimports", "mlflowmirrors"}


def _body(name: str) -> dict[str, Any]:
    return {"kind": "KiroframeSync", "metadata": {"namespace": "ns", "name": name}}


def test_a_look_runs_everything_indexed_and_one_failure_stops_no_other() -> None:
    seen: list[str] = []

    def record(body: dict[str, Any]) -> None:
        seen.append(body["metadata"]["name"])

    def fail(body: dict[str, Any]) -> None:
        raise RuntimeError("the API server went away")

    indexes = [{None: [Work(fail, _body("a")), Work(record, _body("b"))]}, {}, {None: [Work(record, _body("c"))]}]
    asyncio.run(look(indexes))
    assert sorted(seen) == ["b", "c"]
