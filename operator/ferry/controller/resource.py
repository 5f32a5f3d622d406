"""One of our resources as the controller reads it: identity, the spec as applied, the typed status.

The body is what the API server (or kopf's watch) handed over; `status` is parsed once into the
kind's status model, leniently (`StatusModel.read`), so every decision reads typed fields and
every write builds the same model.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from ferry.api import API_VERSION, Kind
from ferry.api.status import BaseStatus
from ferry.controller.cron import parse_time


@dataclass(frozen=True)
class Resource:
    kind: Kind
    body: dict[str, Any]

    @property
    def meta(self) -> dict[str, Any]:
        return self.body["metadata"]

    @property
    def name(self) -> str:
        return self.meta["name"]

    @property
    def namespace(self) -> str:
        return self.meta["namespace"]

    @property
    def uid(self) -> str:
        return self.meta["uid"]

    @property
    def generation(self) -> int | None:
        return self.meta.get("generation")

    @property
    def created(self) -> datetime:
        return parse_time(self.meta["creationTimestamp"])

    @property
    def spec(self) -> dict[str, Any]:
        return self.body.get("spec") or {}

    @property
    def scheduled(self) -> bool:
        """Runs on a schedule (KiroframeSync always, MlflowExport with spec.schedule)."""
        return self.kind.always_scheduled or bool(self.spec.get("schedule"))

    @cached_property
    def status(self) -> Any:  # the kind's status model; Any so that kind-specific fields type-check
        status: BaseStatus = self.kind.status.read(self.body.get("status"))
        return status

    def new_status(self, **fields: Any) -> Any:
        """A status patch of this kind: only the fields given are written (None removes one)."""
        return self.kind.status(**fields)

    def patched(self, status: Any) -> Resource:
        """This resource as it reads once the status patch `status` is applied (a merge patch)."""
        merged = {**(self.body.get("status") or {}), **status.wire()}
        return Resource(self.kind, {**self.body, "status": {k: v for k, v in merged.items() if v is not None}})

    def reference(self) -> dict[str, Any]:
        """The object reference (``involvedObject``) of an Event posted about this resource."""
        return {"apiVersion": API_VERSION, "kind": self.kind.kind, "name": self.name, "namespace": self.namespace,
                "uid": self.meta.get("uid")}
