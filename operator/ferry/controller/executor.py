"""The one place the controller's decisions reach the cluster: `Executor.run` carries out actions.

Actions are applied in order, each against the resource they were decided for. A Kubernetes
failure that may pass (a 5xx, a timeout) becomes `kopf.TemporaryError`, so the periodic look
or the next watch event tries again; the decisions are level-based, so a retry decides afresh.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from ferry.controller.actions import Action, AnnotateJob, CreateJob, DeleteJob, Emit, PatchStatus
from ferry.controller.kube import Kube
from ferry.controller.metrics import Metrics
from ferry.controller.resource import Resource

Poster = Callable[[dict[str, Any], str, str, str], None]  # (object reference, type, reason, message)


class Executor:
    def __init__(self, kube: Kube, post: Poster | None = None, metrics: Metrics | None = None) -> None:
        self.kube = kube
        self.post = post or kube.post_event
        self.metrics = metrics

    def run(self, resource: Resource, actions: Iterable[Action]) -> None:
        for action in actions:
            self.apply(resource, action)

    def apply(self, resource: Resource, action: Action) -> None:
        ns = resource.namespace
        if isinstance(action, PatchStatus):
            self.kube.patch_status(resource.kind, ns, resource.name, action.status.wire())
            if self.metrics is not None:
                self.metrics.observe(resource, action.status)
        elif isinstance(action, Emit):
            self.post(resource.reference(), "Warning" if action.warning else "Normal", action.reason,
                      action.message[:1000])
        elif isinstance(action, CreateJob):
            self._create(resource, action)
        elif isinstance(action, DeleteJob):
            self.kube.delete_job(ns, action.name)
        elif isinstance(action, AnnotateJob):
            self.kube.annotate_job(ns, action.name, action.annotations)
        else:  # pragma: no cover - the Action union is closed
            raise TypeError(f"unknown action {action!r}")

    def _create(self, resource: Resource, action: CreateJob) -> None:
        try:
            created = self.kube.create_job(action.job)
        except ApiException as err:
            if err.status in (400, 422):
                self.run(resource, action.refused(api_reason(err)))
                return
            raise kopf.TemporaryError(f"creating Job {action.name}: {api_reason(err)}", delay=5) from err
        if created:
            self.apply(resource, Emit("JobCreated", f"Created Job {action.name}"))
        self.run(resource, action.then)


def api_reason(err: ApiException) -> str:
    """The API server's own sentence for a refusal."""
    try:
        return str(json.loads(err.body)["message"])
    except (TypeError, ValueError, KeyError):
        return str(err.reason)
