"""How many finished Jobs a scheduled resource keeps: `history.prune`, as a CronJob's history limits."""

from __future__ import annotations

from ferry.api.resources import KIROFRAME_SYNC
from ferry.controller.history import prune
from tests.unit.decisions import SYNC_SPEC, deleted, job, kinds


def spec(**limits: int):
    return KIROFRAME_SYNC.spec.model_validate({**SYNC_SPEC, **limits})


def run(day: int, status: str) -> dict:
    """The run of 2024-01-<day> at 03:00, named as a scheduled Job is."""
    return job(f"sync-{day:02d}", status, claim=None, created=f"2024-01-{day:02d}T03:00:00Z")


# oldest to newest: the 10th ... the 19th
HISTORY = [
    run(10, "Complete"), run(11, "Failed"), run(12, "Complete"), run(13, "Running"), run(14, "Failed"),
    run(15, "Complete"), run(16, "Complete"), run(17, "Failed"), run(18, "Complete"), run(19, "Running"),
]  # fmt: skip


def test_defaults_keep_three_complete_and_one_failed() -> None:
    actions = prune(spec(), HISTORY)
    assert kinds(actions) == ["DeleteJob"] * 4
    assert deleted(actions) == ["sync-12", "sync-10", "sync-14", "sync-11"]  # newest first within each kind


def test_limits_of_the_spec() -> None:
    actions = prune(spec(successfulJobsHistoryLimit=1, failedJobsHistoryLimit=2), HISTORY)
    assert deleted(actions) == ["sync-16", "sync-15", "sync-12", "sync-10", "sync-11"]


def test_running_jobs_are_never_deleted() -> None:
    actions = prune(spec(successfulJobsHistoryLimit=0, failedJobsHistoryLimit=0), HISTORY)
    assert set(deleted(actions)) == {f"sync-{d}" for d in (10, 11, 12, 14, 15, 16, 17, 18)}
    assert "sync-13" not in deleted(actions) and "sync-19" not in deleted(actions)
    assert prune(spec(successfulJobsHistoryLimit=0), [run(1, "Running"), run(2, "Pending")]) == []


def test_age_not_listing_order_decides() -> None:
    shuffled = [HISTORY[i] for i in (4, 9, 0, 7, 2, 5, 1, 8, 3, 6)]
    assert deleted(prune(spec(), shuffled)) == ["sync-12", "sync-10", "sync-14", "sync-11"]


def test_within_the_limits_nothing_is_deleted() -> None:
    assert prune(spec(), [run(1, "Complete"), run(2, "Complete"), run(3, "Complete"), run(4, "Failed")]) == []
    assert prune(spec(), []) == []
