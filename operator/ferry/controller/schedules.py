"""Scheduled resources (KiroframeSync, MlflowExport with a schedule): start the run that is due.

CronJob semantics: the schedule is read in ``timeZone``; ``suspend`` starts nothing new; at
most one run starts per look, however long the operator was away (older due times count as
missed); ``startingDeadlineSeconds`` turns a late run into a missed one; ``concurrencyPolicy``
says what happens while the previous run is still active. A sync's Job carries the watermark
of the last successful one, so each run sends only what changed.

A mirror also starts a run on request, like ``kubectl create job --from=cronjob/...``: a new value
of its annotation ``ferry.dev/sync-now`` starts one run at the next look (suspended or not, under
its concurrencyPolicy), and ``status.lastSyncRequest`` records the value handled.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from ferry.api.export import MlflowExportSpec
from ferry.api.mirror import SYNC_NOW_ANNOTATION, MlflowMirrorSpec
from ferry.api.status import JobReference
from ferry.controller import cron, phases
from ferry.controller.actions import Actions, CreateJob, DeleteJob, Emit, PatchStatus
from ferry.controller.jobs import (
    PATH_ANNOTATION,
    SCHEDULED_ANNOTATION,
    build_job,
    scheduled_job_name,
    sync_now_job_name,
)
from ferry.controller.jobstate import job_state
from ferry.controller.policy import violations
from ferry.controller.references import export_location
from ferry.controller.resource import Resource
from ferry.controller.settings import OperatorSettings
from ferry.controller.validation import validate
from ferry.outcome import Phase
from ferry.storage.retention import export_name


def tick(resource: Resource, now: datetime, settings: OperatorSettings,
         jobs: Callable[[], list[dict[str, Any]]],
         secret_labels: Callable[[BaseModel], dict[str, dict[str, str] | None]] = lambda spec: {}) -> Actions:
    """What to do at this look; `jobs` lists the resource's Jobs and `secret_labels` reads the labels
    of the Secrets the spec names (for the policy), both called only when a run is due."""
    spec, errors = validate(resource.kind, resource.spec)
    if spec is not None and not errors:
        errors = list(violations(spec, settings.policy, settings.job_image, api_server_hosts=settings.api_server_hosts))
    if errors:
        return phases.fail_validation(resource, errors, now)
    old = resource.status
    marks = [old.last_schedule_time, old.last_missed_time]
    last = max([resource.created, *(cron.parse_time(t) for t in marks if t)])
    plan = cron.plan(spec.schedule, spec.time_zone, last, now, spec.starting_deadline_seconds)
    due_now = plan.due is not None and not spec.suspend
    requested = sync_request(resource)
    if settings.policy.credentials_secret_label and (due_now or requested or old.phase is Phase.FAILED_VALIDATION):
        refused = list(violations(spec, settings.policy, settings.job_image, secret_labels(spec),
                                  settings.api_server_hosts))
        if refused:  # read only when it matters: a Secret's labels may change between runs
            return phases.fail_validation(resource, refused, now)
    fields: dict[str, Any] = {}
    change: tuple[Phase, str, str] | None = None
    if old.phase is Phase.FAILED_VALIDATION:  # fixed: back to where the last run left it
        change = (old.last_result.phase if old.last_result else Phase.PENDING, "SpecValid", "")
        fields.update(validation_errors=None, message=None)
    if old.next_schedule_time != cron.format_time(plan.next):
        fields["next_schedule_time"] = cron.format_time(plan.next)
    missed = (old.missed_runs or 0) + plan.missed
    if old.phase is None:  # a new schedule says so, rather than showing no phase at all
        waiting = ("Suspended: no run starts while spec.suspend is true" if spec.suspend
                   else f"Waiting for the first run at {cron.format_time(plan.next)}")
        fields["message"] = waiting
        change = (Phase.PENDING, "WaitingForSchedule", waiting)

    def patch() -> Actions:
        if change is not None:
            return [PatchStatus(phases.transition(resource, *change, now, **fields))]
        return [PatchStatus(resource.new_status(**fields))] if fields else []

    if requested is not None:  # before the schedule: one run per look, and this one was asked for
        return _start_requested(resource, spec, requested, now, settings, jobs, fields, patch)
    if spec.suspend or (plan.due is None and not plan.missed):
        return patch()
    if plan.due is None:
        fields.update(missed_runs=missed, last_missed_time=cron.format_time(now))
        return [*patch(), Emit("MissedSchedule", f"{plan.missed} run(s) missed their startingDeadlineSeconds",
                                warning=True)]
    due = cron.format_time(plan.due)
    job_name = scheduled_job_name(resource.name, int(plan.due.timestamp()))
    listed = jobs()
    if _finished(listed, job_name):
        # This run's Job was created by a look cut short before it wrote the status (an operator
        # killed in between) and has finished since: the run happened, convergence records its
        # result from the Job; starting it again or calling it active would be wrong.
        fields.update(last_schedule_time=due, missed_runs=missed or None)
        return patch()
    active = _others_active(listed, job_name)
    if active and spec.concurrency_policy == "Forbid":
        fields.update(missed_runs=missed + 1, last_missed_time=due)
        return [*patch(), Emit("RunSkipped", f"Run of {due} skipped: Job {active[0]} is still active (Forbid)")]
    fields.update(last_schedule_time=due, missed_runs=missed or None)
    return _start(resource, spec, job_name, due, f"the run of {due}", active, now, settings, fields)


def sync_request(resource: Resource) -> str | None:
    """The value of a mirror's ``ferry.dev/sync-now`` annotation not handled yet, or None."""
    if resource.kind.kind != "MlflowMirror":
        return None
    value = (resource.meta.get("annotations") or {}).get(SYNC_NOW_ANNOTATION)
    if not value or value == resource.status.last_sync_request:
        return None  # "" cannot be recorded (a status patch sends it as null): it would start a run every look
    return str(value)


def _start_requested(resource: Resource, spec: Any, value: str, now: datetime, settings: OperatorSettings,
                     jobs: Callable[[], list[dict[str, Any]]], fields: dict[str, Any],
                     patch: Callable[[], Actions]) -> Actions:
    """The run asked for with `value`: started at once, or, under Forbid, once the active run has finished.

    The Job's name comes from the value, so a look cut short after creating it (an operator
    killed before it wrote the status) finds it again instead of starting a second run.
    """
    job_name = sync_now_job_name(resource.name, resource.uid, value)
    listed = jobs()
    if _finished(listed, job_name):  # it ran already: convergence records its result
        fields["last_sync_request"] = value
        return patch()
    active = _others_active(listed, job_name)
    what = f"the sync requested by {SYNC_NOW_ANNOTATION}={value}"
    if active and spec.concurrency_policy == "Forbid":
        message = f"Waiting for Job {active[0]} to finish before starting {what} (Forbid)"
        if resource.status.message == message:
            return patch()
        fields["message"] = message
        return [*patch(), Emit("SyncRequestWaiting", message)]
    fields["last_sync_request"] = value
    return _start(resource, spec, job_name, cron.format_time(now), what, active, now, settings, fields)


def _finished(listed: list[dict[str, Any]], job_name: str) -> bool:
    return any(j["metadata"]["name"] == job_name and job_state(j).finished for j in listed)


def _others_active(listed: list[dict[str, Any]], job_name: str) -> list[str]:
    """The Jobs still active, but for the run's own (created by a look cut short): it holds nothing back."""
    return [j["metadata"]["name"] for j in listed if not job_state(j).finished and j["metadata"]["name"] != job_name]


def _start(resource: Resource, spec: Any, job_name: str, due: str, what: str, active: list[str], now: datetime,
           settings: OperatorSettings, fields: dict[str, Any]) -> Actions:
    """Create the Job of one run (`what`), after deleting the `active` ones under Replace."""
    actions: Actions = []
    if active and spec.concurrency_policy == "Replace":
        for name in active:
            actions += [DeleteJob(name), Emit("RunReplaced", f"Deleted Job {name} to start {what} (Replace)")]
        active = []
    known = {ref.name: ref for ref in resource.status.active or []}  # runs still active keep their scheduled time
    message = f"Job {job_name} created for {what}"
    fields.update(
        job_name=job_name, message=message,
        active=[known.get(n) or JobReference(name=n) for n in active if n != job_name]
        + [JobReference(name=job_name, scheduled_time=due)],
        observed_generation=resource.generation,
    )  # fmt: skip
    status = phases.transition(resource, Phase.PENDING, "JobCreated", message, now, **fields)
    job = scheduled_job(resource, spec, job_name, due, settings)
    return [*actions, CreateJob(job, then=[PatchStatus(status)], refused=lambda reason: phases.job_refused(resource, reason, now))]


def scheduled_job(resource: Resource, spec: Any, job_name: str, due: str, settings: OperatorSettings) -> dict[str, Any]:
    """The Job of the run due at `due`: an export writes a directory of its own, a sync gets the watermark
    (and a mirror the time of its latest full comparison)."""
    annotations = {SCHEDULED_ANNOTATION: due}
    resolved: dict[str, Any] = {"scheduled_time": due}
    where = None
    if isinstance(spec, MlflowExportSpec):
        where = export_location(spec, export_name(resource.name, cron.parse_time(due)))  # a place of its own
        resolved.update(output_path=where.job_path, keep=spec.keep)
        annotations[PATH_ANNOTATION] = where.path
    elif isinstance(spec, MlflowMirrorSpec):
        compared = resource.status.last_full_compare_time
        resolved.update(watermark=resource.status.watermark,
                        last_full_compare=int(cron.parse_time(compared).timestamp() * 1000) if compared else None)
    elif spec.options is None or spec.options.incremental:
        resolved["watermark"] = resource.status.watermark
    return build_job(resource, spec, job_name=job_name, settings=settings, claim_name=where.claim if where else None,
                     s3=where.s3 if where else None, annotations=annotations, **resolved)
