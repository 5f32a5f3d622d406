"""From a Job back to its resource's status: running, then its result, recorded exactly once.

A finished Job's result goes into the status and the Job is annotated ``ferry.dev/recorded``;
a recorded Job is never looked at again, so a restarted operator, which sees every Job anew,
reports nothing twice. One-shot resources have one Job (``status.jobName``); a scheduled one
has a Job per run and keeps the last run's result in ``status.lastResult``.

A scheduled run's Job also says what the tick that created it wrote: as a CronJob adopts the
Jobs it finds, a run's Job that the status does not know (an operator killed between creating
it and patching the status) puts its scheduled time into ``lastScheduleTime`` and, while it
runs, itself into ``active``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ferry.api.status import JobReference, RunResult
from ferry.controller.actions import Actions, AnnotateJob, DeleteJob, Emit, PatchStatus
from ferry.controller.cron import format_time, parse_time
from ferry.controller.jobs import (
    PATH_ANNOTATION,
    RECORDED_ANNOTATION,
    SCHEDULED_ANNOTATION,
    scheduled_job_name,
)
from ferry.controller.jobstate import (
    JobState,
    PodState,
    job_state,
    outcome_of,
    pod_state,
    pod_termination,
    result_message,
)
from ferry.controller.phases import finish_without_job, follow_start, transition
from ferry.controller.resource import Resource
from ferry.outcome import Outcome, Phase


def recorded(job: dict[str, Any]) -> bool:
    return bool(annotation(job, RECORDED_ANNOTATION))


def converge(resource: Resource, job: dict[str, Any], pods: list[dict[str, Any]], now: datetime,
             start_timeout: float | None = None) -> Actions:
    """Bring `resource`'s status up to `job`'s state; `pods` are the Job's.

    A Job whose pod has not started `start_timeout` seconds after the Job was created ends its
    resource (or, for a schedule, that run) Failed with the pod's reason, and the Job is deleted
    so that nothing starts later by surprise.
    """
    if recorded(job):
        return []
    state = job_state(job)
    if resource.scheduled:
        return _converge_scheduled(resource, job, state, pods, now, start_timeout)
    return _converge_one_shot(resource, job, state, pods, now, start_timeout)


def _start_timed_out(job: dict[str, Any], pod: PodState, now: datetime, start_timeout: float | None) -> str | None:
    """Why the Job counts as never started, once its pod has had `start_timeout` seconds."""
    if start_timeout is None or pod.started or _age(job, now) <= start_timeout:
        return None
    why = pod.words() if pod.stuck else "its pod was not started"
    return f"Job {job['metadata']['name']} did not start within {start_timeout:.0f} s: {why}"


def _converge_one_shot(resource: Resource, job: dict[str, Any], state: JobState, pods: list[dict[str, Any]],
                       now: datetime, start_timeout: float | None) -> Actions:
    old = resource.status
    name = job["metadata"]["name"]
    if old.job_name not in (None, name) or (old.phase is not None and old.phase.terminal):
        return []
    if not state.finished:
        pod = pod_state(pods)
        message = _start_timed_out(job, pod, now, start_timeout)
        if message is not None:
            return [*finish_without_job(resource, message, now), DeleteJob(name)]
        return follow_start(resource, name, state, pod, now)
    outcome = _outcome(state, pods)
    message = result_message(outcome)
    fields: dict[str, Any] = dict(
        counts=outcome.counts, message=message, failed=outcome.failed or None,
        completion_time=state.completion_time or format_time(now),
        job_name=name, start_time=old.start_time or state.start_time,
    )  # fmt: skip
    if resource.kind.kind == "MlflowExport" and outcome.phase is not Phase.FAILED:
        fields.update(path=annotation(job, PATH_ANNOTATION), claim_name=claim_of(job))
    status = transition(resource, outcome.phase, outcome.phase.value, message, now,
                        generation=old.observed_generation, **fields)
    return _record(outcome, name, message, status)


def _converge_scheduled(resource: Resource, job: dict[str, Any], state: JobState, pods: list[dict[str, Any]],
                        now: datetime, start_timeout: float | None = None) -> Actions:
    old = resource.status
    name = job["metadata"]["name"]
    adopted = _schedule_mark(resource, job)
    if not state.finished:
        pod = pod_state(pods)
        message = _start_timed_out(job, pod, now, start_timeout)
        if message is None:
            if adopted and not any(ref.name == name for ref in old.active or []):
                adopted["active"] = [*(old.active or []), JobReference(name=name, scheduled_time=adopted["last_schedule_time"])]
            if not adopted:
                return follow_start(resource, name, state, pod, now)
            patch = resource.new_status(**adopted)
            return [PatchStatus(patch), *follow_start(resource.patched(patch), name, state, pod, now)]
        # This run failed; the schedule goes on (and, under Forbid, is no longer held back by it).
        completion = format_time(now)
        last = RunResult(phase=Phase.FAILED, job_name=name, scheduled_time=annotation(job, SCHEDULED_ANNOTATION),
                         completion_time=completion, message=message)  # fmt: skip
        status = transition(resource, Phase.FAILED, "Failed", message, now, last_result=last, message=message,
                            completion_time=completion, active=_without(old.active, name), **adopted,
                            **_mirror_fields(resource, None, completion))  # fmt: skip
        return [PatchStatus(status), Emit("Failed", message, warning=True), DeleteJob(name)]
    outcome = _outcome(state, pods)
    message = result_message(outcome)
    completion = state.completion_time or format_time(now)
    last = RunResult(phase=outcome.phase, job_name=name, scheduled_time=annotation(job, SCHEDULED_ANNOTATION),
                     completion_time=completion, counts=outcome.counts, message=message)  # fmt: skip
    fields: dict[str, Any] = dict(counts=outcome.counts, message=message, failed=outcome.failed or None,
                                  completion_time=completion, active=_without(old.active, name), **adopted)  # fmt: skip
    if outcome.phase is not Phase.FAILED:
        fields["last_successful_time"] = completion
        if resource.kind.kind == "MlflowExport":
            last.path = annotation(job, PATH_ANNOTATION)
            fields.update(path=last.path, claim_name=claim_of(job))
        if outcome.watermark is not None:
            fields["watermark"] = outcome.watermark
    fields.update(_mirror_fields(resource, outcome, completion))
    status = transition(resource, outcome.phase, outcome.phase.value, message, now, last_result=last, **fields)
    return _record(outcome, name, message, status)


def _schedule_mark(resource: Resource, job: dict[str, Any]) -> dict[str, Any]:
    """``lastScheduleTime`` from `job` when the tick that created it could not write it: the run's
    scheduled time, if later than the status says.

    Only a run of the schedule counts (its Job is named after its scheduled time); a run asked for
    by ``ferry.dev/sync-now`` moves no schedule mark.
    """
    due = annotation(job, SCHEDULED_ANNOTATION)
    try:
        due_time = parse_time(due) if due else None
    except ValueError:
        return {}
    if due_time is None or job["metadata"]["name"] != scheduled_job_name(resource.name, int(due_time.timestamp())):
        return {}
    last = resource.status.last_schedule_time
    if last is not None and parse_time(last) >= due_time:
        return {}
    return {"last_schedule_time": due}


def _mirror_fields(resource: Resource, outcome: Outcome | None, completion: str) -> dict[str, Any]:
    """A mirror's standby fields after a run that ended at `completion` (`outcome` None: it never started).

    A sync that did not fail says how far behind the standby is (``lag_seconds``) and when it
    compared everything. A Failed one copied nothing known: the watermark stays, and the lag is
    the time since the watermark, the oldest moment whose changes may not be at the standby.
    """
    if resource.kind.kind != "MlflowMirror":
        return {}
    fields: dict[str, Any] = {}
    watermark = resource.status.watermark
    if outcome is not None and outcome.phase is not Phase.FAILED:
        fields["last_sync_time"] = completion
        watermark = outcome.watermark if outcome.watermark is not None else watermark
        if outcome.full_compare_time is not None:
            fields["last_full_compare_time"] = format_time(datetime.fromtimestamp(outcome.full_compare_time / 1000, UTC))
        if outcome.lag_seconds is not None:
            fields["lag_seconds"] = max(0, outcome.lag_seconds)
            return fields
    if watermark is not None:
        fields["lag_seconds"] = max(0, int(parse_time(completion).timestamp() - watermark / 1000))
    return fields


def _record(outcome: Outcome, job_name: str, message: str, status: Any) -> Actions:
    return [
        PatchStatus(status),
        Emit(outcome.phase.value, f"Job {job_name}: {message}", warning=outcome.phase is not Phase.SUCCEEDED),
        AnnotateJob(job_name, {RECORDED_ANNOTATION: "true"}),
    ]


def job_deleted(resource: Resource, job: dict[str, Any], now: datetime) -> Actions:
    """A Job deleted before it finished (by hand, by Replace): its resource must not wait forever."""
    if job_state(job).finished or recorded(job):
        return []
    name = job["metadata"]["name"]
    old = resource.status
    if resource.scheduled:
        return [PatchStatus(resource.new_status(active=_without(old.active, name)))]
    if old.job_name == name and not (old.phase is not None and old.phase.terminal):
        return finish_without_job(resource, f"Job {name} was deleted before it finished", now)
    return []


def _age(job: dict[str, Any], now: datetime) -> float:
    created = job["metadata"].get("creationTimestamp")
    return (now - parse_time(created)).total_seconds() if created else 0.0


def _outcome(state: JobState, pods: list[dict[str, Any]]) -> Outcome:
    message, exit_code = pod_termination(pods)
    return outcome_of(state, message, exit_code)


def _without(active: list[JobReference] | None, name: str) -> list[JobReference] | None:
    return [a for a in active or [] if a.name != name] or None


def annotation(job: dict[str, Any], key: str) -> str | None:
    return (job["metadata"].get("annotations") or {}).get(key)


def claim_of(job: dict[str, Any]) -> str | None:
    for volume in job["spec"]["template"]["spec"].get("volumes", []):
        if volume.get("name") == "data":
            return volume["persistentVolumeClaim"]["claimName"]
    return None
