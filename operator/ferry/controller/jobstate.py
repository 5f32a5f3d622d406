"""What a Job and its pods say: where the Job is and, once it ended, its `Outcome`. Pure functions.

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

from ferry.outcome import Outcome, Phase

JobPhase = Literal["Pending", "Running", "Complete", "Failed"]


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


# Waiting reasons that do not pass by themselves: the pod will not start until someone acts.
STUCK_REASONS = frozenset({
    "CreateContainerConfigError", "CreateContainerError", "ErrImagePull", "ImagePullBackOff", "InvalidImageName",
    "ErrImageNeverPull", "RunContainerError", "CrashLoopBackOff",
})  # fmt: skip


@dataclass(frozen=True)
class PodState:
    """Whether a Job's pod has started the engine, or why it cannot yet."""

    started: bool = False
    reason: str = ""  # the kubelet's or the scheduler's reason, e.g. ImagePullBackOff, Unschedulable
    message: str = ""

    @property
    def stuck(self) -> bool:
        return bool(self.reason) and not self.started

    def words(self) -> str:
        return f"{self.reason}: {self.message}" if self.message else self.reason


def pod_state(pods: list[dict[str, Any]]) -> PodState:
    """The newest pod's state: started once a container runs or ran; otherwise what holds it back.

    A pod waiting in ``ContainerCreating`` is only stuck when the kubelet says why (a volume it
    cannot mount, such as a claim that does not exist); an unscheduled pod says why through its
    ``PodScheduled`` condition.
    """
    if not pods:
        return PodState()
    pod = max(pods, key=lambda p: p["metadata"].get("creationTimestamp") or "")
    status = pod.get("status") or {}
    if status.get("phase") in ("Running", "Succeeded", "Failed"):
        return PodState(started=True)
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        if "running" in state or "terminated" in state:
            return PodState(started=True)
        waiting = state.get("waiting") or {}
        reason, message = waiting.get("reason") or "", waiting.get("message") or ""
        if reason in STUCK_REASONS or (reason == "ContainerCreating" and message):
            return PodState(reason=reason, message=message)
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return PodState(reason=condition.get("reason") or "Unschedulable", message=condition.get("message") or "")
    return PodState()


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
        if state.phase == "Failed" and outcome.phase is Phase.SUCCEEDED:  # killed after writing its result
            outcome.phase = Phase.FAILED
            outcome.message = FAILURE_WORDS.get(state.reason, state.message or state.reason)
        return outcome
    if state.phase == "Complete":
        return Outcome(phase=Phase.SUCCEEDED, message="the Job completed without reporting a result")
    words = [FAILURE_WORDS.get(state.reason, state.message or state.reason or "the Job failed")]
    last_line = next((line for line in reversed(termination.strip().splitlines()) if line.strip()), "")
    if last_line:
        words.append(last_line.strip()[:500])
    elif exit_code is not None:
        words.append(f"last pod exited with code {exit_code}")
    return Outcome(phase=Phase.FAILED, message=": ".join(words))


def result_message(outcome: Outcome) -> str:
    """The outcome's own words, or the counts in words when the engine left none."""
    if outcome.message:
        return outcome.message
    done = outcome.counts.sentence()
    if outcome.phase is Phase.SUCCEEDED:
        return f"done: {done}"
    return f"{outcome.phase.value}: {done}; {len(outcome.failed)} failed"
