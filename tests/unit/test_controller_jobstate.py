"""From Job conditions and the pod's termination message to the resource's status."""

from __future__ import annotations

from datetime import UTC, datetime

from ferry.api.resources import MLFLOW_EXPORT
from ferry.controller.convergence import converge
from ferry.controller.jobstate import job_state, outcome_of, pod_termination
from ferry.controller.phases import set_condition
from ferry.controller.resource import Resource
from ferry.outcome import Counts, Outcome

NOW = datetime(2024, 1, 1, 12, tzinfo=UTC)


def job(status: dict) -> dict:
    return {"metadata": {"name": "j"}, "status": status}


def pod(message: str, exit_code: int, finished: str) -> dict:
    terminated = {"exitCode": exit_code, "message": message, "finishedAt": finished}
    return {"status": {"containerStatuses": [{"state": {"terminated": terminated}}]}}


def test_job_states() -> None:
    assert job_state(job({})).phase == "Pending"
    assert job_state(job({"active": 1, "startTime": "2024-01-01T00:00:00Z"})).phase == "Running"
    done = job_state(job({"conditions": [{"type": "Complete", "status": "True"}], "completionTime": "T"}))
    assert done.phase == "Complete" and done.completion_time == "T" and done.finished
    failed = job_state(job({"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
                                            "lastTransitionTime": "T2"}]}))  # fmt: skip
    assert (failed.phase, failed.reason, failed.completion_time) == ("Failed", "DeadlineExceeded", "T2")


def test_outcome_from_termination_message_wins() -> None:
    outcome = Outcome(phase="PartiallyFailed", counts=Counts(runs=3), failed=["run r1: gone"], message="m")
    state = job_state(job({"conditions": [{"type": "Complete", "status": "True"}]}))
    assert outcome_of(state, outcome.to_termination_message(), 0) == outcome


def test_newest_pod_speaks_for_the_job() -> None:
    message, code = pod_termination([pod("old", 1, "2024-01-01T00:00:01Z"), pod("new", 2, "2024-01-01T00:00:09Z")])
    assert (message, code) == ("new", 2)
    assert pod_termination([{"status": {}}]) == ("", None)


def test_failure_reasons_in_plain_words() -> None:
    state = job_state(job({"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}))
    outcome = outcome_of(state, "Traceback...\nConnectionError: http://db:5000 refused\n", 1)
    assert outcome.phase == "Failed"
    assert outcome.message == ("the Job failed too many times (backoffLimit reached): "
                               "ConnectionError: http://db:5000 refused")  # fmt: skip
    assert "exited with code 137" in outcome_of(state, "", 137).message


def test_deadline_overrides_a_success_written_before_the_kill() -> None:
    state = job_state(job({"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]}))
    outcome = outcome_of(state, Outcome().to_termination_message(), None)
    assert outcome.phase == "Failed" and "activeDeadlineSeconds" in outcome.message


def test_complete_job_without_result_is_succeeded() -> None:
    state = job_state(job({"conditions": [{"type": "Complete", "status": "True"}]}))
    assert outcome_of(state, "", 0).phase == "Succeeded"


def test_condition_transition_time_moves_only_with_status() -> None:
    first = set_condition(None, "Succeeded", "Unknown", "JobCreated", "m", 1, NOW)
    first[0].last_transition_time = "2000-01-01T00:00:00Z"
    same = set_condition(first, "Succeeded", "Unknown", "Running", "m2", 1, NOW)
    assert same[0].last_transition_time == "2000-01-01T00:00:00Z" and same[0].reason == "Running"
    moved = set_condition(same, "Succeeded", "True", "Succeeded", "", 1, NOW)
    assert moved[0].last_transition_time != "2000-01-01T00:00:00Z"
    assert len(set_condition(moved, "Validated", "True", "SpecValid", "", 1, NOW)) == 2


def test_result_status_fields() -> None:
    done = job({"conditions": [{"type": "Complete", "status": "True"}], "completionTime": "T"})
    done["metadata"]["annotations"] = {}
    done["spec"] = {"template": {"spec": {"volumes": []}}}
    export = Resource(MLFLOW_EXPORT, {"metadata": {"name": "e", "namespace": "ns", "uid": "u", "generation": 1,
                                                   "creationTimestamp": "2024-01-01T00:00:00Z"},
                                      "spec": {}, "status": {"phase": "Running", "jobName": "j"}})
    result = Outcome(counts=Counts(experiments=1, runs=2)).to_termination_message()
    patch = converge(export, done, [pod(result, 0, "2024-01-01T00:00:09Z")], NOW)[0].status.wire()
    assert patch["phase"] == "Succeeded" and patch["completionTime"] == "T"
    assert patch["counts"]["runs"] == 2 and patch["failed"] is None
    assert patch["message"] == "done: 1 experiments, 2 runs, 0 models, 0 versions"
