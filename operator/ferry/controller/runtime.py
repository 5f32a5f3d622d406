"""The controller's imperative shell: read what a decision needs, decide, carry the actions out.

One `Controller` per operator process, made at startup and kept in kopf's memo (no module-level
state): it holds the Kubernetes client, the settings and the clock, so tests can hand it a
fake clock and run every decision against a real API server, or call the decisions directly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from ferry.api import BY_KIND, Kind
from ferry.api.resources import MLFLOW_EXPORT
from ferry.controller import convergence, cron, history, lifecycle, schedules
from ferry.controller.actions import DeleteJob
from ferry.controller.executor import Executor
from ferry.controller.jobs import start_timeout
from ferry.controller.jobstate import job_state, pod_state
from ferry.controller.kube import Kube
from ferry.controller.lifecycle import Observed
from ferry.controller.policy import credential_secrets
from ferry.controller.resource import Resource
from ferry.controller.settings import OperatorSettings
from ferry.controller.validation import validate
from ferry.outcome import Phase


@dataclass
class Controller:
    kube: Kube
    settings: OperatorSettings = field(default_factory=OperatorSettings)
    clock: Callable[[], datetime] = cron.now
    executor: Executor | None = None

    def __post_init__(self) -> None:
        self.executor = self.executor or Executor(self.kube)
        self._locks: dict[tuple[str, str, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _lock(self, kind: str, namespace: str, name: str) -> threading.Lock:
        """One lock per resource, held while its status is decided and written.

        A resource's own watch event and its Job's are handled in different threads, and after a
        restart both arrive at once for a Job that finished while the operator was away: without
        the lock both would read the Job unrecorded and report its result twice.
        """
        with self._locks_guard:
            return self._locks.setdefault((kind, namespace, name), threading.Lock())

    def _run(self, resource: Resource, actions: list[Any]) -> None:
        assert self.executor is not None
        self.executor.run(resource, actions)

    # --- one-shot resources ---------------------------------------------------------------------
    def reconcile(self, kind: Kind, body: dict[str, Any], *, look_at_job: bool = False) -> None:
        """Validate, start or follow a one-shot resource; `look_at_job` also checks its Job still exists."""
        resource = Resource(kind, body)
        with self._lock(kind.kind, resource.namespace, resource.name):
            self._run(resource, lifecycle.decide(resource, self.observe(resource, look_at_job), self.clock(),
                                                 self.settings))

    def observe(self, resource: Resource, look_at_job: bool) -> Observed:
        job, pods, export = None, [], None
        read = look_at_job and lifecycle.wants_job(resource)
        if read:
            job = self.kube.read_job(resource.namespace, resource.status.job_name)
            if job is not None:
                pods = self.kube.pods_of_job(resource.namespace, job["metadata"]["name"])
        ref = lifecycle.wants_export(resource)
        if ref is not None:
            found = self.kube.get_resource(MLFLOW_EXPORT, resource.namespace, ref)
            export = Resource(MLFLOW_EXPORT, found) if found is not None else None
        labels: dict[str, dict[str, str] | None] = {}
        if self.settings.policy.credentials_secret_label and not resource.status.job_name:
            spec, errors = validate(resource.kind, resource.spec)
            if spec is not None and not errors:
                labels = self.secret_labels(resource.namespace, spec)
        return Observed(job_read=read, job=job, pods=pods, export=export, secret_labels=labels)

    def secret_labels(self, namespace: str, spec: BaseModel) -> dict[str, dict[str, str] | None]:
        """The labels of every Secret `spec` names as credentials (for the policy's label rule)."""
        return {name: self.kube.secret_labels(namespace, name) for _, name in credential_secrets(spec)}

    def look_again(self, kind: Kind, body: dict[str, Any]) -> None:
        """The periodic look at a one-shot resource that has not started: an import waiting for its
        export, a start that failed on a passing error (the watch event is not repeated), or a Job
        whose pod may never start (its start timeout needs a clock, not an event)."""
        resource = Resource(kind, body)
        now = self.clock()
        if resource.status.job_name:
            since = lifecycle.pending_since(resource)
            if since is not None and (now - since).total_seconds() < start_timeout(resource, self.settings):
                return  # pod events report on it until it could have timed out
        else:
            settling = timedelta(seconds=max(10.0, 2 * self.settings.schedule_tick_seconds))
            if resource.status.phase is not Phase.PENDING and now - resource.created < settling:
                return  # just applied: its own watch event is starting it
        self.reconcile(kind, body, look_at_job=True)

    # --- Jobs -------------------------------------------------------------------------------------
    def on_job(self, event_type: str | None, job: dict[str, Any], pods: list[dict[str, Any]] | None = None) -> None:
        """A Job changed (or went): bring its owner's status up to it, and keep the schedule's history.

        `pods` are the Job's pods when the caller has them (a pod event); otherwise they are listed.
        """
        if convergence.recorded(job):
            return
        deleted = event_type == "DELETED"
        state = job_state(job)
        if not deleted and not state.finished:
            if state.phase == "Pending" and pods is None:
                return  # no pod yet: nothing to report
            if pods is None:
                pods = self.kube.pods_of_job(job["metadata"]["namespace"], job["metadata"]["name"])
            started = pod_state(pods)
            if not (started.started or started.stuck):
                return  # its pod is still on its way: nothing to report (the periodic look times it out)
        ref = next((r for r in job["metadata"].get("ownerReferences", []) if r.get("controller")), None)
        if ref is None:
            return
        with self._lock(ref.get("kind", ""), job["metadata"]["namespace"], ref.get("name", "")):
            owner = self.owner(job)
            if owner is None:
                return
            now = self.clock()
            if deleted:
                self._run(owner, convergence.job_deleted(owner, job, now))
                return
            if state.finished:  # read again under the lock: the resource's own event may have recorded it
                job = self.kube.read_job(owner.namespace, job["metadata"]["name"]) or job
                if convergence.recorded(job):
                    return
            if pods is None:
                pods = self.kube.pods_of_job(owner.namespace, job["metadata"]["name"])
            actions = convergence.converge(owner, job, pods, now, start_timeout(owner, self.settings))
            self._run(owner, actions)
        if state.finished and actions and owner.scheduled:
            spec, errors = validate(owner.kind, owner.spec)
            if spec is not None and not errors:
                self._run(owner, history.prune(spec, self.kube.jobs_of(owner.kind, owner.namespace, owner.name,
                                                                        owner.uid)))  # fmt: skip

    def _start_timed_out(self, resource: Resource) -> bool:
        """A pod that never starts sends no event: the periodic look times the latest run out."""
        status, now = resource.status, self.clock()
        since = lifecycle.pending_since(resource)
        timeout = start_timeout(resource, self.settings)
        if status.phase is not Phase.PENDING or not status.job_name or since is None:
            return False
        if (now - since).total_seconds() <= timeout:
            return False
        job = self.kube.read_job(resource.namespace, status.job_name)
        if job is None or job_state(job).finished:
            return False  # gone or done: the Job's own events report it
        actions = convergence.converge(resource, job, self.kube.pods_of_job(resource.namespace, status.job_name),
                                       now, timeout)
        if not any(isinstance(action, DeleteJob) for action in actions):
            return False
        self._run(resource, actions)
        return True

    def on_pod(self, pod: dict[str, Any]) -> None:
        """A Job's pod changed: it started the engine, or it says why it cannot start."""
        state = pod_state([pod])
        if not (state.started or state.stuck):
            return  # nothing a user needs to hear (the Job's own events report the rest)
        job_name = (pod["metadata"].get("labels") or {}).get("job-name")
        job = self.kube.read_job(pod["metadata"]["namespace"], job_name) if job_name else None
        if job is not None and not job_state(job).finished:
            self.on_job(None, job, pods=[pod])

    def owner(self, job: dict[str, Any]) -> Resource | None:
        """The resource that owns `job`, read fresh, if it still exists and is still the same object."""
        for ref in job["metadata"].get("ownerReferences", []):
            kind = BY_KIND.get(ref.get("kind", ""))
            if kind is not None and ref.get("controller"):
                found = self.kube.get_resource(kind, job["metadata"]["namespace"], ref["name"])
                if found is not None and found["metadata"]["uid"] == ref["uid"]:
                    return Resource(kind, found)
        return None

    # --- schedules --------------------------------------------------------------------------------
    def tick(self, kind: Kind, body: dict[str, Any]) -> None:
        """Start the run that is due, if any: at most one per look, whatever was missed; first,
        end the latest run if its pod has not started within its start timeout."""
        resource = Resource(kind, body)
        if self._start_timed_out(resource):
            return  # the status just changed: the next look starts from it
        jobs = lambda: self.kube.jobs_of(kind, resource.namespace, resource.name, resource.uid)  # noqa: E731
        self._run(resource, schedules.tick(resource, self.clock(), self.settings, jobs,
                                           lambda spec: self.secret_labels(resource.namespace, spec)))
