"""From a Job back to its resource's status: running, then its result, recorded exactly once.

`convergence.converge` and `convergence.job_deleted` as a user reads their result: phase,
counts, failures, message and times in the status, the Event, and the ``ferry.dev/recorded``
mark that keeps a restarted operator from reporting the same Job twice.
"""

from __future__ import annotations

import pytest

from ferry.api.resources import KIROFRAME_SYNC, MLFLOW_EXPORT, MLFLOW_IMPORT, MLFLOW_MIRROR
from ferry.controller.actions import DeleteJob
from ferry.controller.convergence import converge, job_deleted
from ferry.outcome import Counts, Outcome, Phase
from tests.unit.decisions import (
    EXPORT_SPEC,
    IMPORT_PVC_SPEC,
    MIRROR_SPEC,
    NOW,
    NOW_TEXT,
    PATH,
    RECORDED,
    SCHEDULED,
    SCHEDULED_EXPORT_SPEC,
    SYNC_SPEC,
    annotated,
    condition,
    events,
    job,
    kinds,
    patches,
    pod,
    resource,
    running_pod,
    said,
    the_patch,
    waiting_pod,
)

NO_COUNTS = Counts().model_dump(by_alias=True)  # every kind, zero
ONE = "nightly-f0552"
STARTED = "2024-01-31T03:00:02Z"
COMPLETED = "2024-01-31T03:05:00Z"
PARTLY = Outcome.of(Counts(experiments=1, runs=3, bytes=2048), ["run r9: artifact download failed"])
PARTLY_MESSAGE = "1 experiments, 3 runs, 0 models, 0 versions; 1 failed"


def one_shot(kind=MLFLOW_EXPORT, spec=None, **status: object):
    stored = {"phase": "Pending", "jobName": ONE, "observedGeneration": 1, "message": f"Job {ONE} created",
              "conditions": [condition("Succeeded", "Unknown", "JobCreated"),
                             condition("Validated", "True", "SpecValid")], **status}  # fmt: skip
    return resource(kind, spec or (EXPORT_SPEC if kind is MLFLOW_EXPORT else IMPORT_PVC_SPEC),
                    {k: v for k, v in stored.items() if v is not None})  # fmt: skip


def finished(
    name: str = ONE, status: str = "Complete", annotations: dict | None = None, **kw: object
) -> dict:
    return job(name, status, {PATH: "nightly", **(annotations or {})}, **kw)


# --- one-shot: running ------------------------------------------------------------------------------


def test_running_job_makes_the_resource_running_once() -> None:
    pending = one_shot()
    actions = converge(pending, job(ONE, "Running"), [running_pod()], NOW)
    message = f"Job {ONE} is running"
    patch = the_patch(actions)
    assert (patch["phase"], patch["message"], patch["jobName"]) == ("Running", message, ONE)
    assert patch["startTime"] == STARTED
    assert said(patch, "Succeeded") == ("Unknown", "Running", message)
    assert events(actions) == [("Running", message, False)]
    assert converge(pending.patched(actions[0].status), job(ONE, "Running"), [running_pod()], NOW) == []


def test_running_job_without_a_start_time_starts_now() -> None:
    patch = the_patch(converge(one_shot(), job(ONE, "Running", started=None), [running_pod()], NOW))
    assert patch["startTime"] == NOW_TEXT


def test_pending_job_says_nothing_yet() -> None:
    assert converge(one_shot(), job(ONE, "Pending"), [], NOW) == []


# --- one-shot: finished -----------------------------------------------------------------------------


def test_finished_job_writes_its_outcome_and_is_recorded() -> None:
    resource_ = one_shot(phase="Running", startTime="2024-01-31T03:00:01Z")
    actions = converge(resource_, finished(), [pod(PARTLY)], NOW)
    assert kinds(actions) == ["PatchStatus", "Emit", "AnnotateJob"]
    patch = the_patch(actions)
    assert patch["phase"] == "PartiallyFailed"
    assert patch["counts"] == {**NO_COUNTS, "experiments": 1, "runs": 3, "bytes": 2048}
    assert patch["failed"] == ["run r9: artifact download failed"]
    assert patch["message"] == PARTLY_MESSAGE
    assert patch["completionTime"] == COMPLETED
    assert patch["startTime"] == "2024-01-31T03:00:01Z"  # the one already in status is kept
    assert patch["jobName"] == ONE
    assert said(patch, "Succeeded") == ("False", "PartiallyFailed", PARTLY_MESSAGE)
    assert said(patch, "Validated") == ("True", "SpecValid", None)
    assert events(actions) == [("PartiallyFailed", f"Job {ONE}: {PARTLY_MESSAGE}", True)]
    assert annotated(actions) == [(ONE, {RECORDED: "true"})]


def test_succeeded_is_a_normal_event_and_clears_failures() -> None:
    done = Outcome.of(Counts(experiments=2, runs=5))
    actions = converge(one_shot(phase="Running"), finished(), [pod(done)], NOW)
    patch = the_patch(actions)
    assert patch["phase"] == "Succeeded" and patch["failed"] is None
    assert patch["message"] == "2 experiments, 5 runs, 0 models, 0 versions"
    assert said(patch, "Succeeded")[:2] == ("True", "Succeeded")
    assert events(actions) == [
        ("Succeeded", f"Job {ONE}: 2 experiments, 5 runs, 0 models, 0 versions", False)
    ]


def test_finished_export_says_where_it_wrote() -> None:
    patch = the_patch(converge(one_shot(phase="Running"), finished(), [pod(PARTLY)], NOW))
    assert (patch["path"], patch["claimName"]) == ("nightly", "backups")


def test_failed_export_says_no_path() -> None:
    broke = Outcome(phase=Phase.FAILED, message="http://mlflow:5000 refused the connection")
    actions = converge(one_shot(phase="Running"), finished(status="Failed"), [pod(broke, 1)], NOW)
    patch = the_patch(actions)
    assert (patch["phase"], patch["message"]) == ("Failed", "http://mlflow:5000 refused the connection")
    assert "path" not in patch and "claimName" not in patch
    assert events(actions) == [("Failed", f"Job {ONE}: http://mlflow:5000 refused the connection", True)]


def test_finished_import_writes_no_export_fields() -> None:
    patch = the_patch(converge(one_shot(MLFLOW_IMPORT, phase="Running"), finished(), [pod(PARTLY)], NOW))
    assert patch["phase"] == "PartiallyFailed"
    assert "path" not in patch and "claimName" not in patch


def test_result_conditions_speak_for_the_generation_that_started() -> None:
    changed = resource(MLFLOW_EXPORT, EXPORT_SPEC, {"phase": "Running", "jobName": ONE, "observedGeneration": 1},
                       generation=4)  # fmt: skip
    patch = the_patch(converge(changed, finished(), [pod(PARTLY)], NOW))
    assert {c["observedGeneration"] for c in patch["conditions"]} == {1}


def test_deadline_after_a_written_success_is_failed() -> None:
    actions = converge(one_shot(phase="Running"), finished(status="Failed", reason="DeadlineExceeded"),
                       [pod(Outcome.of(Counts(runs=4)))], NOW)  # fmt: skip
    patch = the_patch(actions)
    message = "the Job ran longer than activeDeadlineSeconds and was stopped"
    assert (patch["phase"], patch["message"]) == ("Failed", message)
    assert "path" not in patch
    assert events(actions) == [("Failed", f"Job {ONE}: {message}", True)]


def test_job_failed_without_a_result_says_why_in_plain_words() -> None:
    crash = "Traceback (most recent call last):\n  ...\nConnectionError: http://mlflow:5000 refused\n"
    patch = the_patch(converge(one_shot(phase="Running"), finished(status="Failed"), [pod(crash, 1)], NOW))
    assert patch["phase"] == "Failed"
    assert patch["message"] == ("the Job failed too many times (backoffLimit reached): "
                                "ConnectionError: http://mlflow:5000 refused")  # fmt: skip


def test_complete_job_without_a_result_and_without_a_time() -> None:
    patch = the_patch(converge(one_shot(phase="Running"), finished(completed=None), [], NOW))
    assert (patch["phase"], patch["message"]) == ("Succeeded", "the Job completed without reporting a result")
    assert patch["completionTime"] == NOW_TEXT


def test_recorded_job_is_never_looked_at_again() -> None:
    again = finished(annotations={RECORDED: "true"})
    assert converge(one_shot(phase="Running"), again, [pod(PARTLY)], NOW) == []
    assert converge(one_shot(phase="Pending"), job(ONE, "Running", {RECORDED: "true"}), [], NOW) == []


def test_a_job_that_is_not_the_resources_does_nothing() -> None:
    stranger = finished(name="nightly-00000")
    assert converge(one_shot(phase="Running"), stranger, [pod(PARTLY)], NOW) == []
    assert converge(one_shot(), job("nightly-00000", "Running"), [], NOW) == []


@pytest.mark.parametrize("phase", ["Succeeded", "PartiallyFailed", "Failed", "FailedValidation"])
def test_a_finished_resource_ignores_its_job(phase: str) -> None:
    assert converge(one_shot(phase=phase), finished(), [pod(PARTLY)], NOW) == []


# --- scheduled ---------------------------------------------------------------------------------------

RUN = "sync-1706670000"
OTHER = "sync-1706583600"


def sync(**status: object):
    stored = {"phase": "Running", "jobName": RUN, "lastScheduleTime": "2024-01-31T03:00:00Z",
              "watermark": 1706500000000, "lastSuccessfulTime": "2024-01-30T03:04:00Z",
              "active": [{"name": OTHER, "scheduledTime": "2024-01-30T03:00:00Z"},
                         {"name": RUN, "scheduledTime": "2024-01-31T03:00:00Z"}], **status}  # fmt: skip
    return resource(KIROFRAME_SYNC, SYNC_SPEC, stored, name="sync")


def run_job(status: str = "Complete", **kw: object) -> dict:
    return job(RUN, status, {SCHEDULED: "2024-01-31T03:00:00Z"}, claim=None, **kw)


def test_finished_run_becomes_the_last_result() -> None:
    synced = Outcome(counts=Counts(experiments=2, runs=7), watermark=1706670000000)
    actions = converge(sync(), run_job(), [pod(synced)], NOW)
    patch = the_patch(actions)
    message = "done: 2 experiments, 7 runs, 0 models, 0 versions"
    assert patch["lastResult"] == {
        "phase": "Succeeded", "jobName": RUN, "scheduledTime": "2024-01-31T03:00:00Z", "completionTime": COMPLETED,
        "counts": {**NO_COUNTS, "experiments": 2, "runs": 7}, "message": message,
    }  # fmt: skip
    assert patch["phase"] == "Succeeded" and patch["message"] == message
    assert patch["active"] == [{"name": OTHER, "scheduledTime": "2024-01-30T03:00:00Z"}]
    assert patch["lastSuccessfulTime"] == COMPLETED
    assert patch["watermark"] == 1706670000000
    assert events(actions) == [("Succeeded", f"Job {RUN}: {message}", False)]
    assert annotated(actions) == [(RUN, {RECORDED: "true"})]


def test_failed_run_keeps_the_last_success_and_the_watermark() -> None:
    broke = Outcome(phase=Phase.FAILED, message="kiroframe answered 401", watermark=1706670000000)
    actions = converge(sync(), run_job("Failed"), [pod(broke, 1)], NOW)
    patch = the_patch(actions)
    assert patch["phase"] == "Failed" and patch["lastResult"]["phase"] == "Failed"
    assert patch["lastResult"]["message"] == "kiroframe answered 401"
    assert "lastSuccessfulTime" not in patch and "watermark" not in patch
    assert said(patch, "Succeeded") == ("False", "Failed", "kiroframe answered 401")
    assert events(actions) == [("Failed", f"Job {RUN}: kiroframe answered 401", True)]


def test_last_active_run_finishing_empties_the_active_list() -> None:
    only = sync(active=[{"name": RUN, "scheduledTime": "2024-01-31T03:00:00Z"}])
    patch = the_patch(converge(only, run_job(), [pod(Outcome())], NOW))
    assert "active" in patch and patch["active"] is None


def test_run_without_a_watermark_leaves_it() -> None:
    patch = the_patch(converge(sync(), run_job(), [pod(Outcome())], NOW))
    assert "watermark" not in patch and patch["lastSuccessfulTime"] == COMPLETED


def test_scheduled_export_run_says_its_directory() -> None:
    export = resource(
        MLFLOW_EXPORT, SCHEDULED_EXPORT_SPEC, {"phase": "Running", "jobName": "nightly-1706670000"}
    )
    run = job("nightly-1706670000", "Complete",
              {SCHEDULED: "2024-01-31T03:00:00Z", PATH: "exports/nightly-20240131T030000Z"})  # fmt: skip
    patch = the_patch(converge(export, run, [pod(PARTLY)], NOW))
    assert patch["lastResult"]["path"] == "exports/nightly-20240131T030000Z"
    assert (patch["path"], patch["claimName"]) == ("exports/nightly-20240131T030000Z", "backups")
    assert patch["phase"] == "PartiallyFailed" and patch["lastSuccessfulTime"] == COMPLETED


def test_failed_scheduled_export_run_says_no_directory() -> None:
    export = resource(MLFLOW_EXPORT, SCHEDULED_EXPORT_SPEC, {"phase": "Running", "path": "exports/older"})
    run = job("nightly-1706670000", "Failed", {SCHEDULED: "2024-01-31T03:00:00Z", PATH: "exports/new"})
    patch = the_patch(converge(export, run, [pod(Outcome(phase=Phase.FAILED, message="m"), 1)], NOW))
    assert "path" not in patch and "claimName" not in patch and "path" not in patch["lastResult"]


def test_scheduled_run_running() -> None:
    pending = sync(phase="Pending")
    actions = converge(pending, run_job("Running"), [running_pod()], NOW)
    patch = the_patch(actions)
    assert (patch["phase"], patch["jobName"], patch["message"]) == ("Running", RUN, f"Job {RUN} is running")
    assert converge(pending.patched(actions[0].status), run_job("Running"), [running_pod()], NOW) == []


# --- a run whose tick was cut short: the Job says what the status lacks --------------------------------


def unaware(**status: object):
    """The status as a tick left it when the operator was killed after creating RUN's Job."""
    stored = {"phase": "Succeeded", "lastScheduleTime": "2024-01-30T03:00:00Z", "active": None, **status}
    return resource(KIROFRAME_SYNC, SYNC_SPEC, {k: v for k, v in stored.items() if v is not None}, name="sync")


def test_a_finished_run_the_status_does_not_know_sets_the_last_schedule_time() -> None:
    patch = the_patch(converge(unaware(), run_job(), [pod(Outcome())], NOW))
    assert patch["lastScheduleTime"] == "2024-01-31T03:00:00Z"
    assert patch["lastResult"]["scheduledTime"] == "2024-01-31T03:00:00Z"


def test_a_first_run_the_status_does_not_know_sets_the_last_schedule_time() -> None:
    patch = the_patch(converge(unaware(lastScheduleTime=None, phase="Pending"), run_job(), [pod(Outcome())], NOW))
    assert patch["lastScheduleTime"] == "2024-01-31T03:00:00Z"


def test_a_running_run_the_status_does_not_know_is_adopted_as_active() -> None:
    before = unaware(active=[{"name": OTHER, "scheduledTime": "2024-01-30T03:00:00Z"}])
    actions = converge(before, run_job("Running"), [running_pod()], NOW)
    adopted, running = patches(actions)
    assert adopted["lastScheduleTime"] == "2024-01-31T03:00:00Z"
    assert adopted["active"] == [{"name": OTHER, "scheduledTime": "2024-01-30T03:00:00Z"},
                                 {"name": RUN, "scheduledTime": "2024-01-31T03:00:00Z"}]
    assert (running["phase"], running["jobName"]) == ("Running", RUN)
    after = before.patched(actions[0].status).patched(actions[1].status)
    assert converge(after, run_job("Running"), [running_pod()], NOW) == []


def test_an_older_run_never_moves_the_last_schedule_time_back() -> None:
    later = unaware(lastScheduleTime="2024-01-31T04:00:00Z")
    assert "lastScheduleTime" not in the_patch(converge(later, run_job(), [pod(Outcome())], NOW))


def test_a_requested_run_moves_no_schedule_mark() -> None:
    requested = job("sync-now-0123abcd", "Complete", {SCHEDULED: "2024-01-31T11:00:00Z"}, claim=None)
    assert "lastScheduleTime" not in the_patch(converge(unaware(), requested, [pod(Outcome())], NOW))


def test_recorded_run_is_not_reported_again() -> None:
    assert converge(sync(), job(RUN, "Complete", {RECORDED: "true"}), [pod(Outcome())], NOW) == []


# --- a Job deleted before it finished -----------------------------------------------------------------


def test_one_shot_job_deleted_before_it_finished_fails() -> None:
    actions = job_deleted(one_shot(phase="Running"), job(ONE, "Running"), NOW)
    message = f"Job {ONE} was deleted before it finished"
    patch = the_patch(actions)
    assert (patch["phase"], patch["message"], patch["completionTime"]) == ("Failed", message, NOW_TEXT)
    assert said(patch, "Succeeded") == ("False", "Failed", message)
    assert events(actions) == [("Failed", message, True)]


def test_deleting_a_finished_or_recorded_or_other_job_changes_nothing() -> None:
    running = one_shot(phase="Running")
    assert job_deleted(running, finished(), NOW) == []  # e.g. its ttlSecondsAfterFinished
    assert job_deleted(running, job(ONE, "Running", {RECORDED: "true"}), NOW) == []
    assert job_deleted(running, job("nightly-00000", "Running"), NOW) == []
    assert job_deleted(one_shot(phase="Succeeded"), job(ONE, "Running"), NOW) == []


def test_scheduled_job_deleted_leaves_the_active_list() -> None:
    actions = job_deleted(sync(), job(OTHER, "Running", claim=None), NOW)
    assert kinds(actions) == ["PatchStatus"]
    assert the_patch(actions) == {"active": [{"name": RUN, "scheduledTime": "2024-01-31T03:00:00Z"}]}
    last = sync(active=[{"name": RUN}])
    assert the_patch(job_deleted(last, job(RUN, "Running", claim=None), NOW)) == {"active": None}


def test_a_sync_is_converged_as_a_scheduled_run_even_without_a_schedule() -> None:
    # Only reachable for an object stored without spec.schedule (today's CRD schema requires it).
    old = resource(KIROFRAME_SYNC, {k: v for k, v in SYNC_SPEC.items() if k != "schedule"},
                   {"phase": "Running", "jobName": RUN, "active": [{"name": RUN}]}, name="sync")  # fmt: skip
    patch = the_patch(converge(old, run_job(), [pod(Outcome(watermark=1706670000000))], NOW))
    assert patch["lastResult"]["jobName"] == RUN and patch["watermark"] == 1706670000000


# --- a pod that cannot start ------------------------------------------------------------------------


def test_an_active_job_whose_pod_has_not_started_is_still_pending() -> None:
    assert converge(one_shot(), job(ONE, "Running"), [waiting_pod("ContainerCreating")], NOW) == []
    assert converge(one_shot(), job(ONE, "Running"), [], NOW) == []


@pytest.mark.parametrize(("reason", "message"), [
    ("CreateContainerConfigError", 'secret "mlflow-creds" not found'),
    ("ContainerCreating", 'MountVolume.SetUp failed: persistentvolumeclaim "backups" not found'),
    ("ImagePullBackOff", 'Back-off pulling image "ferry:nope"'),
])  # fmt: skip
def test_a_pod_that_cannot_start_says_why_once(reason: str, message: str) -> None:
    pending = one_shot()
    actions = converge(pending, job(ONE, "Running"), [waiting_pod(reason, message)], NOW)
    said_here = f"Job {ONE} cannot start: {reason}: {message}"
    patch = the_patch(actions)
    assert (patch["phase"], patch["message"]) == ("Pending", said_here)
    assert said(patch, "Succeeded") == ("Unknown", reason, said_here)
    assert events(actions) == [(reason, said_here, True)]
    assert converge(pending.patched(actions[0].status), job(ONE, "Running"), [waiting_pod(reason, message)],
                    NOW) == []


def test_an_unschedulable_pod_says_the_schedulers_words() -> None:
    pod = {"metadata": {"name": "p"}, "status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
         "message": "0/3 nodes are available: 3 Insufficient memory."}]}}  # fmt: skip
    patch = the_patch(converge(one_shot(), job(ONE, "Running"), [pod], NOW))
    assert patch["message"] == f"Job {ONE} cannot start: Unschedulable: 0/3 nodes are available: 3 Insufficient memory."


def test_a_pod_not_started_within_the_start_timeout_fails_the_resource_and_removes_the_job() -> None:
    stuck = waiting_pod("CreateContainerConfigError", 'secret "mlflow-creds" not found')
    created_long_ago = job(ONE, "Running")  # created 03:00, NOW is 12:00
    actions = converge(one_shot(), created_long_ago, [stuck], NOW, start_timeout=300)
    message = f"Job {ONE} did not start within 300 s: CreateContainerConfigError: secret \"mlflow-creds\" not found"
    patch = the_patch(actions)
    assert (patch["phase"], patch["message"], patch["completionTime"]) == ("Failed", message, NOW_TEXT)
    assert events(actions) == [("Failed", message, True)]
    assert [a.name for a in actions if isinstance(a, DeleteJob)] == [ONE]
    assert converge(one_shot(), created_long_ago, [running_pod()], NOW, start_timeout=300)[0].status.phase == "Running"
    young = job(ONE, "Running", created="2024-01-31T11:58:00Z")
    assert not [a for a in converge(one_shot(), young, [stuck], NOW, start_timeout=300) if isinstance(a, DeleteJob)]


def test_a_scheduled_run_whose_pod_never_starts_fails_that_run_and_frees_the_schedule() -> None:
    stuck = waiting_pod("ErrImagePull", "pull access denied for ferry:typo")
    pending = sync(phase="Pending")
    actions = converge(pending, run_job("Running"), [stuck], NOW, start_timeout=300)
    message = f"Job {RUN} did not start within 300 s: ErrImagePull: pull access denied for ferry:typo"
    patch = the_patch(actions)
    assert (patch["phase"], patch["message"]) == ("Failed", message)
    assert patch["lastResult"] == {"phase": "Failed", "jobName": RUN, "scheduledTime": "2024-01-31T03:00:00Z",
                                   "completionTime": NOW_TEXT, "message": message}
    assert patch["active"] == [{"name": OTHER, "scheduledTime": "2024-01-30T03:00:00Z"}]  # Forbid no longer waits
    assert "lastSuccessfulTime" not in patch and "watermark" not in patch
    assert events(actions) == [("Failed", message, True)]
    assert [a.name for a in actions if isinstance(a, DeleteJob)] == [RUN]
    young = run_job("Running", created="2024-01-31T11:58:00Z")
    assert not [a for a in converge(pending, young, [stuck], NOW, start_timeout=300) if isinstance(a, DeleteJob)]


# --- a mirror: how far behind the standby is -----------------------------------------------------------


def standby(**status: object):
    stored = {"phase": "Running", "jobName": RUN, "lastScheduleTime": "2024-01-31T03:00:00Z",
              "watermark": 1706670000000, "lastSyncTime": "2024-01-31T02:05:00Z", "lagSeconds": 12,
              "lastFullCompareTime": "2024-01-30T03:00:00Z",
              "active": [{"name": RUN, "scheduledTime": "2024-01-31T03:00:00Z"}], **status}  # fmt: skip
    return resource(MLFLOW_MIRROR, MIRROR_SPEC, stored, name="standby")


def test_a_finished_sync_writes_the_standbys_watermark_lag_and_last_sync() -> None:
    synced = Outcome(counts=Counts(experiments=1, runs=3), watermark=1706670290000, lag_seconds=7)
    actions = converge(standby(), run_job(), [pod(synced)], NOW)
    patch = the_patch(actions)
    assert (patch["phase"], patch["watermark"], patch["lagSeconds"]) == ("Succeeded", 1706670290000, 7)
    assert patch["lastSyncTime"] == patch["lastSuccessfulTime"] == COMPLETED
    assert "lastFullCompareTime" not in patch  # an incremental sync: the last comparison stands
    assert annotated(actions) == [(RUN, {RECORDED: "true"})]


def test_a_sync_that_compared_everything_says_when() -> None:
    compared = Outcome(watermark=1706670290000, lag_seconds=0, full_compare_time=1706670001500)
    patch = the_patch(converge(standby(), run_job(), [pod(compared)], NOW))
    assert (patch["lastFullCompareTime"], patch["lagSeconds"]) == ("2024-01-31T03:00:01Z", 0)


def test_a_partly_failed_sync_is_a_sync_that_did_not_fail() -> None:
    partly = Outcome.of(Counts(runs=2), ["run r1: artifact too large"])
    partly = partly.model_copy(update={"watermark": 1706670000000, "lag_seconds": 290})
    patch = the_patch(converge(standby(), run_job(), [pod(partly)], NOW))
    assert patch["phase"] == "PartiallyFailed" and patch["lastSyncTime"] == COMPLETED and patch["lagSeconds"] == 290


def test_a_failed_sync_keeps_the_watermark_and_counts_the_lag_from_it() -> None:
    broke = Outcome(phase=Phase.FAILED, message="destination answered 503", watermark=1706670290000, lag_seconds=1)
    patch = the_patch(converge(standby(), run_job("Failed"), [pod(broke, 1)], NOW))
    assert patch["phase"] == "Failed"
    assert "watermark" not in patch and "lastSyncTime" not in patch and "lastSuccessfulTime" not in patch
    assert patch["lagSeconds"] == 300  # completed 03:05:00, watermark 03:00:00: nothing after it is known copied
    never_synced = standby(watermark=None, lagSeconds=None)
    assert "lagSeconds" not in the_patch(converge(never_synced, run_job("Failed"), [pod(broke, 1)], NOW))


def test_a_sync_whose_pod_never_starts_counts_the_lag_until_it_was_given_up() -> None:
    stuck = waiting_pod("CreateContainerConfigError", 'secret "standby" not found')
    patch = the_patch(converge(standby(phase="Pending"), run_job("Running"), [stuck], NOW, start_timeout=300))
    assert patch["phase"] == "Failed" and patch["lagSeconds"] == 9 * 3600  # 12:00 minus the 03:00 watermark
