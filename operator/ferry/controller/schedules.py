"""Scheduled resources (KiroframeSync, MlflowExport with a schedule): start the run that is due.

CronJob semantics: the schedule is read in ``timeZone``; ``suspend`` starts nothing new; at
most one run starts per look, however long the operator was away (older due times count as
missed); ``startingDeadlineSeconds`` turns a late run into a missed one; ``concurrencyPolicy``
says what happens while the previous run is still active. A sync's Job carries the watermark
of the last successful one, so each run sends only what changed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from ferry.api.export import MlflowExportSpec
from ferry.api.status import JobReference
from ferry.controller import cron, phases
from ferry.controller.actions import Actions, CreateJob, DeleteJob, Emit, PatchStatus
from ferry.controller.jobs import (
    PATH_ANNOTATION,
    SCHEDULED_ANNOTATION,
    build_job,
    scheduled_job_name,
)
from ferry.controller.jobstate import job_state
from ferry.controller.policy import violations
from ferry.controller.references import export_location
from ferry.controller.resource import Resource
from ferry.controller.settings import OperatorSettings
from ferry.controller.validation import validate
from ferry.outcome import Phase


def tick(resource: Resource, now: datetime, settings: OperatorSettings,
         jobs: Callable[[], list[dict[str, Any]]],
         secret_labels: Callable[[BaseModel], dict[str, dict[str, str] | None]] = lambda spec: {}) -> Actions:
    """What to do at this look; `jobs` lists the resource's Jobs and `secret_labels` reads the labels
    of the Secrets the spec names (for the policy), both called only when a run is due."""
    spec, errors = validate(resource.kind, resource.spec)
    if spec is not None and not errors:
        errors = list(violations(spec, settings.policy, settings.job_image))
    if errors:
        return phases.fail_validation(resource, errors, now)
    old = resource.status
    marks = [old.last_schedule_time, old.last_missed_time]
    last = max([resource.created, *(cron.parse_time(t) for t in marks if t)])
    plan = cron.plan(spec.schedule, spec.time_zone, last, now, spec.starting_deadline_seconds)
    due_now = plan.due is not None and not spec.suspend
    if settings.policy.credentials_secret_label and (due_now or old.phase is Phase.FAILED_VALIDATION):
        refused = list(violations(spec, settings.policy, settings.job_image, secret_labels(spec)))
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

    if spec.suspend or (plan.due is None and not plan.missed):
        return patch()
    if plan.due is None:
        fields.update(missed_runs=missed, last_missed_time=cron.format_time(now))
        return [*patch(), Emit("MissedSchedule", f"{plan.missed} run(s) missed their startingDeadlineSeconds",
                                warning=True)]
    due = cron.format_time(plan.due)
    job_name = scheduled_job_name(resource.name, int(plan.due.timestamp()))
    listed = jobs()
    if any(j["metadata"]["name"] == job_name and job_state(j).finished for j in listed):
        # This run's Job was created by a look cut short before it wrote the status (an operator
        # killed in between) and has finished since: the run happened, convergence records its
        # result from the Job; starting it again or calling it active would be wrong.
        fields.update(last_schedule_time=due, missed_runs=missed or None)
        return patch()
    # The due run's own Job, from such a cut-short look, is not another run that is still active.
    active = [j["metadata"]["name"] for j in listed if not job_state(j).finished and j["metadata"]["name"] != job_name]
    if active and spec.concurrency_policy == "Forbid":
        fields.update(missed_runs=missed + 1, last_missed_time=due)
        return [*patch(), Emit("RunSkipped", f"Run of {due} skipped: Job {active[0]} is still active (Forbid)")]
    actions: Actions = []
    if active and spec.concurrency_policy == "Replace":
        for name in active:
            actions += [DeleteJob(name), Emit("RunReplaced", f"Deleted Job {name} to start the run of {due} (Replace)")]
        active = []
    known = {ref.name: ref for ref in old.active or []}  # runs still active keep their scheduled time
    message = f"Job {job_name} created for the run of {due}"
    fields.update(
        last_schedule_time=due, missed_runs=missed or None, job_name=job_name, message=message,
        active=[known.get(n) or JobReference(name=n) for n in active if n != job_name]
        + [JobReference(name=job_name, scheduled_time=due)],
        observed_generation=resource.generation,
    )  # fmt: skip
    status = phases.transition(resource, Phase.PENDING, "JobCreated", message, now, **fields)
    job = scheduled_job(resource, spec, job_name, due, settings)
    return [*actions, CreateJob(job, then=[PatchStatus(status)], refused=lambda reason: phases.job_refused(resource, reason, now))]


def scheduled_job(resource: Resource, spec: Any, job_name: str, due: str, settings: OperatorSettings) -> dict[str, Any]:
    """The Job of the run due at `due`: an export writes a directory of its own, a sync gets the watermark."""
    annotations = {SCHEDULED_ANNOTATION: due}
    resolved: dict[str, Any] = {"scheduled_time": due}
    where = None
    if isinstance(spec, MlflowExportSpec):
        stamp = due.replace("-", "").replace(":", "")
        where = export_location(spec, f"{resource.name}-{stamp}")  # a directory, or a prefix, of its own
        resolved.update(output_path=where.job_path, keep=spec.keep)
        annotations[PATH_ANNOTATION] = where.path
    elif spec.options is None or spec.options.incremental:
        resolved["watermark"] = resource.status.watermark
    return build_job(resource, spec, job_name=job_name, settings=settings, claim_name=where.claim if where else None,
                     s3=where.s3 if where else None, annotations=annotations, **resolved)
