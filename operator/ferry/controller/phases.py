"""Phase changes: the status patch and Event of each phase every kind can enter.

Every phase a resource enters is written by `transition`, so ``Succeeded`` and ``Validated``
always agree with ``phase``, and a condition's ``lastTransitionTime`` moves only when its
status does (metav1.Condition semantics). The changes every kind shares (a refused spec, work
that ended without a Job, a Job that started running) are decided here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ferry.api.status import Condition
from ferry.controller.actions import Actions, Emit, PatchStatus
from ferry.controller.cron import format_time
from ferry.controller.jobstate import JobState, PodState
from ferry.controller.resource import Resource
from ferry.outcome import Phase

ConditionStatus = Literal["True", "False", "Unknown"]


def set_condition(conditions: list[Condition] | None, type_: str, status: ConditionStatus, reason: str,
                  message: str, generation: int | None, now: datetime) -> list[Condition]:
    """`conditions` with one condition replaced; its transition time moves only when its status does."""
    kept = [c for c in conditions or [] if c.type != type_]
    previous = next((c for c in conditions or [] if c.type == type_), None)
    since = previous.last_transition_time if previous and previous.status == status else format_time(now)
    condition = Condition(
        type=type_, status=status, reason=reason,
        message=message[:32768] or None,  # the API server of 1.20 reads "" as null
        last_transition_time=since, observed_generation=generation,
    )  # fmt: skip
    return [*kept, condition]


def succeeded_condition(phase: Phase) -> ConditionStatus:
    if phase is Phase.SUCCEEDED:
        return "True"
    if phase.failed:
        return "False"
    return "Unknown"


def transition(resource: Resource, phase: Phase, reason: str, said: str, now: datetime, /, *,
               generation: int | None = None, **fields: Any) -> Any:
    """The status patch that puts `resource` in `phase`, with `fields` written alongside.

    `reason` and `said` are the conditions' reason and message; `generation` is the one they
    speak for: by default the resource's current one.
    """
    generation = resource.generation if generation is None else generation
    invalid = phase is Phase.FAILED_VALIDATION
    conditions = set_condition(resource.status.conditions, "Succeeded", succeeded_condition(phase), reason,
                               said, generation, now)
    conditions = set_condition(conditions, "Validated", "False" if invalid else "True",
                               "InvalidSpec" if invalid else "SpecValid", said if invalid else "", generation, now)
    return resource.new_status(phase=phase, conditions=conditions, **fields)


def fail_validation(resource: Resource, errors: list[str], now: datetime) -> Actions:
    """``FailedValidation`` with every problem listed; nothing again if they were already said."""
    old = resource.status
    if old.phase is Phase.FAILED_VALIDATION and old.validation_errors == errors:
        return []
    summary = f"{len(errors)} problem(s) in the spec: " + "; ".join(errors)
    status = transition(resource, Phase.FAILED_VALIDATION, "FailedValidation", summary, now,
                        validation_errors=errors, message=summary, observed_generation=resource.generation)
    return [PatchStatus(status), Emit("FailedValidation", summary, warning=True)]


def job_refused(resource: Resource, reason: str, now: datetime) -> Actions:
    """The API server refused the Job we built from the spec: that is the spec's fault (spec.job)."""
    return fail_validation(resource, [f"spec.job: the Job was refused: {reason}"], now)


def finish_without_job(resource: Resource, message: str, now: datetime) -> Actions:
    """``Failed`` for work that ends without a Job result (the Job vanished, the export failed)."""
    status = transition(resource, Phase.FAILED, "Failed", message, now,
                        message=message, completion_time=format_time(now))
    return [PatchStatus(status), Emit("Failed", message, warning=True)]


def follow_start(resource: Resource, job_name: str, state: JobState, pod: PodState, now: datetime) -> Actions:
    """``Running`` once the Job's pod has started the engine, said once per Job; until then
    ``Pending``, and when the pod cannot start, why (the kubelet's or the scheduler's words)."""
    old = resource.status
    if pod.started:
        if old.phase is Phase.RUNNING and old.job_name == job_name:
            return []
        message = f"Job {job_name} is running"
        status = transition(resource, Phase.RUNNING, "Running", message, now, job_name=job_name,
                            start_time=state.start_time or format_time(now), message=message)
        return [PatchStatus(status), Emit("Running", message)]
    if not pod.stuck:
        return []
    message = f"Job {job_name} cannot start: {pod.words()}"
    if old.phase is Phase.PENDING and old.message == message:
        return []
    status = transition(resource, Phase.PENDING, pod.reason, message, now, message=message)
    return [PatchStatus(status), Emit(pod.reason, message, warning=True)]
