"""From a Job and its pod to the resource's status: pure functions, so they are tested without a cluster.

A Job's own conditions say *that* it ended (Complete, or Failed with BackoffLimitExceeded or
DeadlineExceeded); the pod's termination message says *what* happened (the engine's Outcome
JSON). The Outcome wins when there is one; otherwise the Job's reason and the pod's exit say it
in plain words.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from ferry.api.common import Condition
from ferry.controller.schedule import format_time, now
from ferry.outcome import Outcome

JobPhase = Literal["Pending", "Running", "Complete", "Failed"]
SUCCEEDED = "Succeeded"


@dataclass(frozen=True)
class JobState:
    phase: JobPhase
    reason: str = ""
    message: str = ""
    start_time: str | None = None
    completion_time: str | None = None

    @property
    def finished(self) -> bool:
        return self.phase in ("Complete", "Failed")


def job_state(job: dict[str, Any]) -> JobState:
    status = job.get("status") or {}
    start = status.get("startTime")
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            continue
        when = condition.get("lastTransitionTime") or status.get("completionTime")
        if condition.get("type") == "Complete":
            return JobState("Complete", "Complete", "", start, status.get("completionTime") or when)
        if condition.get("type") == "Failed":
            return JobState("Failed", condition.get("reason", ""), condition.get("message", ""), start, when)
    if status.get("active") or status.get("succeeded") or status.get("failed"):
        return JobState("Running", start_time=start)
    return JobState("Pending", start_time=start)


def pod_termination(pods: list[dict[str, Any]]) -> tuple[str, int | None]:
    """The newest terminated container's message and exit code, from a Job's pods."""
    best: tuple[str, str, int | None] = ("", "", None)
    for pod in pods:
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (container.get("state") or {}).get("terminated")
            if terminated:
                finished = terminated.get("finishedAt") or ""
                if finished >= best[0]:
                    best = (finished, terminated.get("message") or "", terminated.get("exitCode"))
    return best[1], best[2]


def parse_outcome(message: str) -> Outcome | None:
    text = message.strip()
    if not text.startswith("{"):
        return None
    try:
        return Outcome.model_validate(json.loads(text))
    except (ValueError, ValidationError):
        return None


FAILURE_WORDS = {
    "BackoffLimitExceeded": "the Job failed too many times (backoffLimit reached)",
    "DeadlineExceeded": "the Job ran longer than activeDeadlineSeconds and was stopped",
}


def outcome_of(state: JobState, termination: str, exit_code: int | None) -> Outcome:
    """The result of a finished Job, in the engine's words when it left any."""
    outcome = parse_outcome(termination)
    if outcome is not None:
        if state.phase == "Failed" and outcome.phase == SUCCEEDED:  # killed after writing its result
            outcome.phase = "Failed"
            outcome.message = FAILURE_WORDS.get(state.reason, state.message or state.reason)
        return outcome
    if state.phase == "Complete":
        return Outcome(phase=SUCCEEDED, message="the Job completed without reporting a result")
    words = [FAILURE_WORDS.get(state.reason, state.message or state.reason or "the Job failed")]
    last_line = next((line for line in reversed(termination.strip().splitlines()) if line.strip()), "")
    if last_line:
        words.append(last_line.strip()[:500])
    elif exit_code is not None:
        words.append(f"last pod exited with code {exit_code}")
    return Outcome(phase="Failed", message=": ".join(words))


def progress_summary(done: int, total: int) -> str:
    return f"{done}/{total}"


def set_condition(
    conditions: list[dict[str, Any]] | None,
    type_: str,
    status: Literal["True", "False", "Unknown"],
    reason: str,
    message: str,
    generation: int | None,
) -> list[dict[str, Any]]:
    """`conditions` with one condition replaced; its transition time moves only when its status does."""
    kept = [c for c in conditions or [] if c.get("type") != type_]
    previous = next((c for c in conditions or [] if c.get("type") == type_), None)
    since = previous["lastTransitionTime"] if previous and previous.get("status") == status else format_time(now())
    condition = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message[:32768] or None,  # the API server of 1.20 reads "" as null
        last_transition_time=since,
        observed_generation=generation,
    )
    return [*kept, condition.wire()]


def succeeded_condition(phase: str) -> Literal["True", "False", "Unknown"]:
    if phase == SUCCEEDED:
        return "True"
    if phase in ("Failed", "PartiallyFailed", "FailedValidation"):
        return "False"
    return "Unknown"


def result_status(outcome: Outcome, state: JobState) -> dict[str, Any]:
    """The status fields a finished Job sets (without conditions, which need the old ones)."""
    status: dict[str, Any] = {
        "phase": outcome.phase,
        "counts": outcome.counts.model_dump(),
        "message": outcome.message or _default_message(outcome),
        "failed": outcome.failed or None,
        "completionTime": state.completion_time or format_time(now()),
    }
    return status


def _default_message(outcome: Outcome) -> str:
    c = outcome.counts
    done = f"{c.experiments} experiments, {c.runs} runs, {c.models} models, {c.versions} versions"
    if outcome.phase == SUCCEEDED:
        return f"done: {done}"
    return f"{outcome.phase}: {done}; {len(outcome.failed)} failed"
