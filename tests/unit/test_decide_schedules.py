"""Scheduled resources (KiroframeSync, MlflowMirror, MlflowExport with a schedule): the run that is due, as a
CronJob, and the run a mirror's ferry.dev/sync-now annotation asks for.

`schedules.tick` as a user reads its result: the phase and message before the first run, the Job
of a due run (its name, annotations and what FERRY_JOB tells it), the schedule's status
(lastScheduleTime, nextScheduleTime, active, missedRuns) and the Events of skipped runs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from ferry.api.mirror import SYNC_NOW_ANNOTATION as SYNC_NOW
from ferry.api.resources import KIROFRAME_SYNC, MLFLOW_EXPORT, MLFLOW_MIRROR
from ferry.controller.jobs import sync_now_job_name
from ferry.controller.schedules import tick
from tests.unit.decisions import (
    MIRROR_SPEC,
    NOW,
    NOW_TEXT,
    PATH,
    SCHEDULED,
    SCHEDULED_EXPORT_SPEC,
    SETTINGS,
    SYNC_SPEC,
    condition,
    created_job,
    deleted,
    events,
    job,
    kinds,
    mounts,
    patches,
    payload,
    resource,
    said,
    the_patch,
    transition_times,
    volumes,
)

DUE = datetime(2024, 1, 31, 3, 0, 5, tzinfo=UTC)  # five seconds after the 03:00 run came due
DUE_TEXT = "2024-01-31T03:00:00Z"
RUN = "sync-1706670000"  # <name>-<unix time of 2024-01-31T03:00:00Z>
NEXT = "2024-02-01T03:00:00Z"
YESTERDAY = "2024-01-30T03:00:00Z"
EARLIER = "sync-1706583600"  # yesterday's run


class Jobs:
    """The `jobs` thunk: the resource's Jobs, counting how often they were listed."""

    def __init__(self, *jobs: dict[str, Any]) -> None:
        self.jobs, self.calls = list(jobs), 0

    def __call__(self) -> list[dict[str, Any]]:
        self.calls += 1
        return self.jobs


def never() -> Callable[[], list[dict[str, Any]]]:
    def listed() -> list[dict[str, Any]]:
        raise AssertionError("the Jobs were listed although no run is due")

    return listed


def sync(status: dict | None = None, *, created: str = "2024-01-30T12:00:00Z", **spec: object):
    return resource(KIROFRAME_SYNC, {**SYNC_SPEC, **spec}, status, name="sync", created=created)


def waiting(**extra: object) -> dict:
    """A schedule that has been looked at and waits for the 03:00 run."""
    return {"phase": "Pending", "message": "Waiting for the first run at 2024-01-31T03:00:00Z",
            "nextScheduleTime": DUE_TEXT, "observedGeneration": 1,
            "conditions": [condition("Succeeded", "Unknown", "WaitingForSchedule"),
                           condition("Validated", "True", "SpecValid")], **extra}  # fmt: skip


def active_run(name: str = EARLIER) -> dict:
    return job(name, "Running", {SCHEDULED: YESTERDAY}, claim=None)


# --- before the first run ---------------------------------------------------------------------------


def test_new_schedule_waits_for_its_first_run() -> None:
    new = sync(created="2024-01-31T11:00:00Z")
    actions = tick(new, NOW, SETTINGS, never())
    message = f"Waiting for the first run at {NEXT}"
    patch = the_patch(actions)
    assert (patch["phase"], patch["message"], patch["nextScheduleTime"]) == ("Pending", message, NEXT)
    assert said(patch, "Succeeded") == ("Unknown", "WaitingForSchedule", message)
    assert said(patch, "Validated") == ("True", "SpecValid", None)
    assert events(actions) == []
    assert tick(new.patched(actions[0].status), NOW, SETTINGS, never()) == []  # nothing changed since


def test_new_suspended_schedule_says_so() -> None:
    patch = the_patch(tick(sync(created="2024-01-31T11:00:00Z", suspend=True), NOW, SETTINGS, never()))
    assert patch["phase"] == "Pending"
    assert patch["message"] == "Suspended: no run starts while spec.suspend is true"
    assert patch["nextScheduleTime"] == NEXT


def test_schedule_read_in_its_time_zone() -> None:
    berlin = sync(created="2024-01-31T11:00:00Z", timeZone="Europe/Berlin")
    patch = the_patch(tick(berlin, NOW, SETTINGS, never()))
    assert patch["nextScheduleTime"] == "2024-02-01T02:00:00Z"  # 03:00 in Berlin is 02:00 UTC in winter


def test_next_schedule_time_moves_without_a_phase_change() -> None:
    stale = sync({**waiting(), "nextScheduleTime": "2024-01-30T03:00:00Z"}, created="2024-01-31T00:00:00Z")
    assert the_patch(tick(stale, datetime(2024, 1, 31, 2, tzinfo=UTC), SETTINGS, never())) == {
        "nextScheduleTime": DUE_TEXT
    }


# --- a due run --------------------------------------------------------------------------------------


def test_due_run_creates_its_job() -> None:
    jobs = Jobs()
    actions = tick(sync(waiting(watermark=1706500000000)), DUE, SETTINGS, jobs)
    assert jobs.calls == 1 and kinds(actions) == ["CreateJob"]
    create = created_job(actions)
    assert create.name == RUN
    assert create.job["metadata"]["annotations"] == {SCHEDULED: DUE_TEXT}
    assert [v["name"] for v in create.job["spec"]["template"]["spec"]["volumes"]] == ["scratch"]
    sent = payload(create.job)
    assert sent["scheduledTime"] == DUE_TEXT and sent["watermark"] == 1706500000000
    assert (sent["kind"], sent["name"]) == ("KiroframeSync", "sync")

    patch = the_patch(create.then)
    message = f"Job {RUN} created for the run of {DUE_TEXT}"
    assert (patch["phase"], patch["message"], patch["jobName"]) == ("Pending", message, RUN)
    assert patch["lastScheduleTime"] == DUE_TEXT and patch["nextScheduleTime"] == NEXT
    assert patch["active"] == [{"name": RUN, "scheduledTime": DUE_TEXT}]
    assert patch["observedGeneration"] == 1
    assert patch["missedRuns"] is None
    assert said(patch, "Succeeded") == ("Unknown", "JobCreated", message)


def test_due_run_is_started_once() -> None:
    due = sync(waiting())
    create = created_job(tick(due, DUE, SETTINGS, Jobs()))
    started = due.patched(create.then[0].status)
    assert tick(started, DUE, SETTINGS, never()) == []


def test_first_run_without_a_watermark_sends_everything() -> None:
    sent = payload(created_job(tick(sync(waiting()), DUE, SETTINGS, Jobs())).job)
    assert "watermark" not in sent


def test_full_sync_gets_no_watermark() -> None:
    full = sync(waiting(watermark=1706500000000), options={"incremental": False})
    assert "watermark" not in payload(created_job(tick(full, DUE, SETTINGS, Jobs())).job)


def test_refused_run_fails_validation() -> None:
    create = created_job(tick(sync(waiting()), DUE, SETTINGS, Jobs()))
    patch = the_patch(create.refused("spec.template: Invalid value"))
    assert patch["phase"] == "FailedValidation"
    assert patch["validationErrors"] == ["spec.job: the Job was refused: spec.template: Invalid value"]


def test_scheduled_export_writes_each_run_to_a_directory_of_its_own() -> None:
    export = resource(MLFLOW_EXPORT, SCHEDULED_EXPORT_SPEC, waiting(), created="2024-01-30T12:00:00Z")
    create = created_job(tick(export, DUE, SETTINGS, Jobs()))
    directory = "exports/nightly-20240131T030000Z"
    assert create.name == "nightly-1706670000"
    assert create.job["metadata"]["annotations"] == {SCHEDULED: DUE_TEXT, PATH: directory}
    assert volumes(create.job)["data"]["persistentVolumeClaim"] == {"claimName": "backups", "readOnly": False}
    assert mounts(create.job)["data"]["readOnly"] is False
    sent = payload(create.job)
    assert (sent["outputPath"], sent["keep"], sent["scheduledTime"]) == (f"/data/{directory}", 5, DUE_TEXT)
    assert "watermark" not in sent


def test_scheduled_export_at_the_claims_root() -> None:
    spec = {**SCHEDULED_EXPORT_SPEC, "destination": {"pvc": {"claimName": "backups"}}}
    spec.pop("keep")
    export = resource(MLFLOW_EXPORT, spec, waiting(), created="2024-01-30T12:00:00Z")
    create = created_job(tick(export, DUE, SETTINGS, Jobs()))
    assert create.job["metadata"]["annotations"][PATH] == "nightly-20240131T030000Z"
    sent = payload(create.job)
    assert sent["outputPath"] == "/data/nightly-20240131T030000Z" and "keep" not in sent


# --- concurrencyPolicy ------------------------------------------------------------------------------


def test_forbid_skips_the_run_while_one_is_active() -> None:
    actions = tick(sync(waiting(missedRuns=2)), DUE, SETTINGS, Jobs(active_run()))
    assert kinds(actions) == ["PatchStatus", "Emit"]
    patch = the_patch(actions)
    assert (patch["missedRuns"], patch["lastMissedTime"]) == (3, DUE_TEXT)
    assert patch["nextScheduleTime"] == NEXT and "lastScheduleTime" not in patch and "phase" not in patch
    assert events(actions) == [
        ("RunSkipped", f"Run of {DUE_TEXT} skipped: Job {EARLIER} is still active (Forbid)", False)
    ]


def test_run_whose_job_finished_before_its_status_was_written_is_not_started_again() -> None:
    """The operator was killed between creating the run's Job and writing the status, and the Job
    finished while it was away: the run is not active, not due again; only its time is recorded."""
    done = job(RUN, "Complete", {SCHEDULED: DUE_TEXT}, claim=None)
    for policy in ("Forbid", "Allow", "Replace"):
        actions = tick(sync(waiting(), concurrencyPolicy=policy), DUE, SETTINGS, Jobs(done))
        assert kinds(actions) == ["PatchStatus"], policy
        assert the_patch(actions) == {"lastScheduleTime": DUE_TEXT, "nextScheduleTime": NEXT, "missedRuns": None}


@pytest.mark.parametrize("policy", ["Forbid", "Replace"])
def test_run_whose_job_exists_unfinished_is_not_held_back_by_itself(policy: str) -> None:
    """The same cut-short look, the Job still running: no RunSkipped or RunReplaced against the run's own
    Job; creating it again is a no-op (409) followed by the status the first look did not write."""
    actions = tick(sync(waiting(), concurrencyPolicy=policy), DUE, SETTINGS,
                   Jobs(job(RUN, "Running", {SCHEDULED: DUE_TEXT}, claim=None)))
    assert kinds(actions) == ["CreateJob"] and events(actions) == []
    assert the_patch(created_job(actions).then)["active"] == [{"name": RUN, "scheduledTime": DUE_TEXT}]


def test_forbid_skipped_run_is_not_due_again() -> None:
    busy = sync(waiting())
    skipped = busy.patched(tick(busy, DUE, SETTINGS, Jobs(active_run()))[0].status)
    assert tick(skipped, DUE, SETTINGS, never()) == []


def test_finished_jobs_do_not_hold_a_run_back() -> None:
    done = job(EARLIER, "Complete", {SCHEDULED: YESTERDAY}, claim=None)
    failed = job("sync-1706497200", "Failed", {SCHEDULED: "2024-01-29T03:00:00Z"}, claim=None)
    create = created_job(tick(sync(waiting()), DUE, SETTINGS, Jobs(done, failed)))
    assert the_patch(create.then)["active"] == [{"name": RUN, "scheduledTime": DUE_TEXT}]


def test_replace_deletes_the_active_job_first() -> None:
    actions = tick(sync(waiting(), concurrencyPolicy="Replace"), DUE, SETTINGS, Jobs(active_run()))
    assert kinds(actions) == ["DeleteJob", "Emit", "CreateJob"]
    assert deleted(actions) == [EARLIER]
    assert events(actions) == [("RunReplaced", f"Deleted Job {EARLIER} to start the run of {DUE_TEXT} (Replace)",
                                False)]  # fmt: skip
    create = created_job(actions)
    assert create.name == RUN
    assert the_patch(create.then)["active"] == [{"name": RUN, "scheduledTime": DUE_TEXT}]


def test_allow_starts_alongside() -> None:
    actions = tick(sync(waiting(), concurrencyPolicy="Allow"), DUE, SETTINGS, Jobs(active_run()))
    assert kinds(actions) == ["CreateJob"]
    create = created_job(actions)
    assert create.name == RUN
    names = [a["name"] for a in the_patch(create.then)["active"]]
    assert names == [EARLIER, RUN]


def test_allow_keeps_the_scheduled_time_of_runs_still_active() -> None:
    earlier = {"name": EARLIER, "scheduledTime": YESTERDAY}
    actions = tick(sync(waiting(active=[earlier]), concurrencyPolicy="Allow"), DUE, SETTINGS, Jobs(active_run()))
    assert the_patch(created_job(actions).then)["active"] == [earlier, {"name": RUN, "scheduledTime": DUE_TEXT}]


# --- missed runs ------------------------------------------------------------------------------------


def test_run_past_its_starting_deadline_is_missed() -> None:
    late = datetime(2024, 1, 31, 3, 10, tzinfo=UTC)
    actions = tick(sync(waiting(), startingDeadlineSeconds=60), late, SETTINGS, never())
    assert kinds(actions) == ["PatchStatus", "Emit"]
    patch = the_patch(actions)
    assert (patch["missedRuns"], patch["lastMissedTime"]) == (1, "2024-01-31T03:10:00Z")
    assert patch["nextScheduleTime"] == NEXT and "lastScheduleTime" not in patch
    assert events(actions) == [("MissedSchedule", "1 run(s) missed their startingDeadlineSeconds", True)]
    missed = sync(waiting(), startingDeadlineSeconds=60).patched(actions[0].status)
    assert tick(missed, late, SETTINGS, never()) == []  # said once


def test_run_within_its_starting_deadline_starts() -> None:
    within = sync(waiting(), startingDeadlineSeconds=60)
    assert created_job(tick(within, DUE, SETTINGS, Jobs())).name == RUN


def test_operator_away_for_days_starts_one_run_and_counts_the_rest() -> None:
    away = sync(
        waiting(lastScheduleTime="2024-01-26T03:00:00Z", missedRuns=1), created="2024-01-20T00:00:00Z"
    )
    actions = tick(away, DUE, SETTINGS, Jobs())
    assert kinds(actions) == ["CreateJob"]  # no catch-up storm
    create = created_job(actions)
    assert create.name == RUN  # the latest due time, not the oldest
    patch = the_patch(create.then)
    assert patch["missedRuns"] == 1 + 4  # the 27th, 28th, 29th and 30th were superseded
    assert patch["lastScheduleTime"] == DUE_TEXT


def test_suspended_schedule_starts_nothing_and_lists_no_jobs() -> None:
    suspended = sync(waiting(), suspend=True)
    assert the_patch(tick(suspended, DUE, SETTINGS, never())) == {"nextScheduleTime": NEXT}


def test_jobs_are_not_listed_when_nothing_is_due() -> None:
    quiet = sync(waiting(nextScheduleTime=NEXT, lastScheduleTime=DUE_TEXT))
    assert tick(quiet, NOW, SETTINGS, never()) == []


# --- validation ---------------------------------------------------------------------------------------


def test_invalid_schedule_fails_validation_once() -> None:
    broken = sync(waiting(), schedule="61 * * * *")
    actions = tick(broken, DUE, SETTINGS, never())
    error = "spec.schedule: '61 * * * *' is not a valid cron expression"
    patch = the_patch(actions)
    assert (patch["phase"], patch["validationErrors"]) == ("FailedValidation", [error])
    assert said(patch, "Validated") == ("False", "InvalidSpec", f"1 problem(s) in the spec: {error}")
    assert events(actions) == [("FailedValidation", f"1 problem(s) in the spec: {error}", True)]
    assert tick(broken.patched(actions[0].status), DUE, SETTINGS, never()) == []


def invalid(**extra: object) -> dict:
    error = "spec.schedule: '61 * * * *' is not a valid cron expression"
    return {"phase": "FailedValidation", "validationErrors": [error], "message": f"1 problem(s) in the spec: {error}",
            "nextScheduleTime": NEXT, "lastScheduleTime": DUE_TEXT,
            "conditions": [condition("Succeeded", "False", "FailedValidation"),
                           condition("Validated", "False", "InvalidSpec")], **extra}  # fmt: skip


def test_fixed_schedule_returns_to_the_last_results_phase() -> None:
    last = {"phase": "PartiallyFailed", "jobName": RUN, "message": "1 failed"}
    actions = tick(sync(invalid(lastResult=last)), NOW, SETTINGS, never())
    patch = the_patch(actions)
    assert patch["phase"] == "PartiallyFailed"
    assert patch["validationErrors"] is None and patch["message"] is None
    assert said(patch, "Validated") == ("True", "SpecValid", None)
    assert said(patch, "Succeeded")[0] == "False"  # a partly failed run is not a success
    assert transition_times(patch)["Validated"] == NOW_TEXT
    assert events(actions) == []


def test_fixed_schedule_that_never_ran_is_pending() -> None:
    patch = the_patch(tick(sync(invalid()), NOW, SETTINGS, never()))
    assert (patch["phase"], patch["validationErrors"]) == ("Pending", None)
    assert said(patch, "Succeeded")[0] == "Unknown"


def test_fixed_schedule_with_a_due_run_starts_it() -> None:
    fixed = sync(invalid(lastScheduleTime=YESTERDAY, nextScheduleTime=DUE_TEXT))
    create = created_job(tick(fixed, DUE, SETTINGS, Jobs()))
    patch = the_patch(create.then)
    assert (patch["phase"], patch["validationErrors"], patch["jobName"]) == ("Pending", None, RUN)
    assert said(patch, "Validated") == ("True", "SpecValid", None)


@pytest.mark.parametrize("policy", ["Forbid", "Replace", "Allow"])
def test_only_one_job_per_look(policy: str) -> None:
    actions = tick(sync(waiting(), concurrencyPolicy=policy), DUE, SETTINGS, Jobs(active_run()))
    assert len([a for a in actions if type(a).__name__ == "CreateJob"]) == (0 if policy == "Forbid" else 1)
    assert len(patches(actions)) == (1 if policy == "Forbid" else 0)  # a created Job's patch is in `then`


# --- a mirror: its payload, and runs asked for with ferry.dev/sync-now -------------------------------


def mirror(status: dict | None = None, *, annotations: dict[str, str] | None = None, **spec: object):
    found = resource(MLFLOW_MIRROR, {**MIRROR_SPEC, **spec}, status, name="standby", created="2024-01-30T12:00:00Z")
    if annotations:
        found.meta["annotations"] = annotations
    return found


MIRROR_RUN = "standby-1706670000"


def after_run(**extra: object) -> dict:
    """A schedule whose 03:00 run has started; the next one is tomorrow's."""
    return waiting(lastScheduleTime=DUE_TEXT, nextScheduleTime=NEXT, **extra)
ASKED = sync_now_job_name("standby", "uid-1", "cut-over")


def test_a_mirrors_run_gets_the_watermark_and_the_time_of_its_latest_full_comparison() -> None:
    compared = mirror(waiting(watermark=1706600000000, lastFullCompareTime="2024-01-30T03:00:01Z"))
    create = created_job(tick(compared, DUE, SETTINGS, Jobs()))
    assert create.name == MIRROR_RUN
    sent = payload(create.job)
    assert (sent["kind"], sent["watermark"], sent["lastFullCompare"]) == ("MlflowMirror", 1706600000000, 1706583601000)
    first = payload(created_job(tick(mirror(waiting()), DUE, SETTINGS, Jobs())).job)
    assert "watermark" not in first and "lastFullCompare" not in first  # everything, compared in full


def test_sync_now_starts_one_run_at_once_between_scheduled_times() -> None:
    asked = mirror(after_run(watermark=1706600000000), annotations={SYNC_NOW: "cut-over"})
    actions = tick(asked, NOW, SETTINGS, Jobs())  # 12:00: no scheduled run is due
    create = created_job(actions)
    assert create.name == ASKED and kinds(actions) == ["CreateJob"]
    assert create.job["metadata"]["annotations"] == {SCHEDULED: NOW_TEXT}
    assert payload(create.job)["watermark"] == 1706600000000
    patch = the_patch(create.then)
    message = f"Job {ASKED} created for the sync requested by {SYNC_NOW}=cut-over"
    assert (patch["phase"], patch["message"], patch["jobName"]) == ("Pending", message, ASKED)
    assert patch["lastSyncRequest"] == "cut-over" and patch["active"] == [{"name": ASKED, "scheduledTime": NOW_TEXT}]
    assert "lastScheduleTime" not in patch  # the schedule goes on as it was
    started = asked.patched(create.then[0].status)
    assert tick(started, NOW, SETTINGS, never()) == []  # once per value
    again = mirror(started.body["status"], annotations={SYNC_NOW: "after the fix"})
    assert created_job(tick(again, NOW, SETTINGS, Jobs())).name == sync_now_job_name("standby", "uid-1",
                                                                                     "after the fix")


def test_sync_now_runs_while_suspended() -> None:
    paused = mirror(after_run(), annotations={SYNC_NOW: "cut-over"}, suspend=True)
    assert created_job(tick(paused, NOW, SETTINGS, Jobs())).name == ASKED
    assert kinds(tick(mirror(waiting(), suspend=True), DUE, SETTINGS, never())) == ["PatchStatus"]  # the schedule waits


def test_sync_now_under_forbid_waits_for_the_active_run_then_starts() -> None:
    asked = mirror(after_run(), annotations={SYNC_NOW: "cut-over"})
    busy = Jobs(job(EARLIER, "Running", {SCHEDULED: YESTERDAY}, claim=None))
    actions = tick(asked, NOW, SETTINGS, busy)
    message = f"Waiting for Job {EARLIER} to finish before starting the sync requested by {SYNC_NOW}=cut-over (Forbid)"
    assert kinds(actions) == ["PatchStatus", "Emit"]
    patch = the_patch(actions)
    assert patch["message"] == message and "lastSyncRequest" not in patch and "missedRuns" not in patch
    assert events(actions) == [("SyncRequestWaiting", message, False)]
    waiting_for_it = asked.patched(actions[0].status)
    assert tick(waiting_for_it, NOW, SETTINGS, busy) == []  # said once
    done = Jobs(job(EARLIER, "Complete", {SCHEDULED: YESTERDAY}, claim=None))
    assert created_job(tick(waiting_for_it, NOW, SETTINGS, done)).name == ASKED


def test_sync_now_under_replace_and_allow() -> None:
    busy = Jobs(job(EARLIER, "Running", {SCHEDULED: YESTERDAY}, claim=None))
    replaced = tick(mirror(after_run(), annotations={SYNC_NOW: "cut-over"}, concurrencyPolicy="Replace"), NOW, SETTINGS,
                    busy)
    assert kinds(replaced) == ["DeleteJob", "Emit", "CreateJob"] and deleted(replaced) == [EARLIER]
    alongside = tick(mirror(after_run(), annotations={SYNC_NOW: "cut-over"}, concurrencyPolicy="Allow"), NOW, SETTINGS,
                     busy)
    assert [ref["name"] for ref in the_patch(created_job(alongside).then)["active"]] == [EARLIER, ASKED]


def test_sync_now_whose_job_finished_before_its_status_was_written_is_not_started_again() -> None:
    asked = mirror(after_run(), annotations={SYNC_NOW: "cut-over"})
    actions = tick(asked, NOW, SETTINGS, Jobs(job(ASKED, "Complete", {SCHEDULED: NOW_TEXT}, claim=None)))
    assert kinds(actions) == ["PatchStatus"] and the_patch(actions) == {"lastSyncRequest": "cut-over"}


def test_sync_now_comes_before_a_scheduled_run_due_at_the_same_look() -> None:
    both = mirror(waiting(), annotations={SYNC_NOW: "cut-over"})
    create = created_job(tick(both, DUE, SETTINGS, Jobs()))
    assert create.name == ASKED
    started = both.patched(create.then[0].status)  # the next look: the scheduled run, under Forbid, waits its turn
    skipped = tick(started, DUE, SETTINGS, Jobs(job(ASKED, "Running", {SCHEDULED: NOW_TEXT}, claim=None)))
    assert events(skipped) == [("RunSkipped", f"Run of {DUE_TEXT} skipped: Job {ASKED} is still active (Forbid)",
                                False)]


def test_sync_now_is_a_mirrors_alone_and_waits_for_a_valid_spec() -> None:
    other = resource(KIROFRAME_SYNC, SYNC_SPEC, after_run(), name="sync", created="2024-01-30T12:00:00Z")
    other.meta["annotations"] = {SYNC_NOW: "x"}
    assert tick(other, NOW, SETTINGS, never()) == []
    emptied = mirror(after_run(lastSyncRequest="cut-over"), annotations={SYNC_NOW: ""})
    assert tick(emptied, NOW, SETTINGS, never()) == []  # "" could never be recorded as handled
    broken = mirror(after_run(), annotations={SYNC_NOW: "cut-over"}, schedule="61 * * * *")
    assert the_patch(tick(broken, NOW, SETTINGS, never()))["phase"] == "FailedValidation"
