"""What the operator's metrics count: results where they are decided, resources as the watch sees them."""

from __future__ import annotations

from ferry.api.resources import KIROFRAME_SYNC, MLFLOW_EXPORT, MLFLOW_MIRROR
from ferry.controller.convergence import converge
from ferry.controller.metrics import Metrics, Seen
from ferry.controller.phases import fail_validation
from ferry.outcome import Counts, Outcome
from tests.unit.decisions import MIRROR_SPEC, NOW, job, pod, resource

SPEC = {"source": {"trackingUri": "http://m:5000"}, "objects": {"experiments": ["e"]},
        "destination": {"pvc": {"claimName": "b"}}}  # fmt: skip


def test_a_recorded_result_is_counted_once_with_its_objects_and_duration() -> None:
    metrics = Metrics()
    running = resource(MLFLOW_EXPORT, SPEC, {"phase": "Running", "jobName": "j", "startTime": "2024-01-31T03:00:00Z"})
    result = Outcome.of(Counts(experiments=1, runs=4, bytes=2048), ["run r: gone"])
    for action in converge(running, job("j", "Complete", completed="2024-01-31T03:02:00Z"), [pod(result)], NOW):
        if hasattr(action, "status"):
            metrics.observe(running, action.status)
    sample = metrics.registry.get_sample_value
    assert sample("ferry_results_total", {"kind": "MlflowExport", "phase": "PartiallyFailed"}) == 1
    assert sample("ferry_objects_moved_total", {"kind": "MlflowExport", "object": "runs"}) == 4
    assert sample("ferry_objects_moved_total", {"kind": "MlflowExport", "object": "bytes"}) == 2048
    assert sample("ferry_failures_total", {"kind": "MlflowExport", "reason": "PartiallyFailed"}) == 1
    assert sample("ferry_job_duration_seconds_sum", {"kind": "MlflowExport", "phase": "PartiallyFailed"}) == 120
    assert sample("ferry_job_duration_seconds_bucket", {"kind": "MlflowExport", "phase": "PartiallyFailed",
                                                          "le": "60.0"}) == 0  # fmt: skip


def test_a_refused_spec_is_a_failure_but_not_a_result() -> None:
    metrics = Metrics()
    fresh = resource(MLFLOW_EXPORT, SPEC, None)
    for action in fail_validation(fresh, ["spec.objects: names nothing"], NOW):
        if hasattr(action, "status"):
            metrics.observe(fresh, action.status)
    sample = metrics.registry.get_sample_value
    assert sample("ferry_failures_total", {"kind": "MlflowExport", "reason": "FailedValidation"}) == 1
    assert sample("ferry_results_total", {"kind": "MlflowExport", "phase": "FailedValidation"}) is None


def test_the_inventory_is_read_when_scraped() -> None:
    metrics = Metrics()
    seen = [Seen("MlflowExport", "ml", "a", "Failed"), Seen("MlflowExport", "ml", "b", "Failed"),
            Seen("MlflowExport", "ml", "c", "Pending", "CreateContainerConfigError"),
            Seen("KiroframeSync", "ml", "kf", "Succeeded", "Succeeded", "2024-01-31T03:00:00Z", 3600.0)]
    metrics.watch(lambda: seen)
    sample = metrics.registry.get_sample_value
    assert sample("ferry_resources", {"kind": "MlflowExport", "phase": "Failed"}) == 2
    assert sample("ferry_jobs_not_starting", {"kind": "MlflowExport", "namespace": "ml", "name": "c",
                                               "reason": "CreateContainerConfigError"}) == 1  # fmt: skip
    labels = {"kind": "KiroframeSync", "namespace": "ml", "name": "kf"}
    assert sample("ferry_last_successful_timestamp_seconds", labels) == 1706670000
    assert sample("ferry_schedule_period_seconds", labels) == 3600
    seen.append(Seen("MlflowExport", "ml", "d", "Failed"))  # live: the next scrape sees it
    assert sample("ferry_resources", {"kind": "MlflowExport", "phase": "Failed"}) == 3


def test_seen_reads_a_schedules_period() -> None:
    sync = resource(KIROFRAME_SYNC, {"schedule": "*/15 * * * *", "source": {"trackingUri": "http://m:5000"},
                                     "kiroframe": {"url": "https://k", "tokenSecret": {"name": "t"}}}, None)
    assert Seen.of(sync).period == 900


def test_a_mirrors_lag_and_last_sync_are_gauges() -> None:
    standby = resource(MLFLOW_MIRROR, MIRROR_SPEC, {"phase": "Failed", "lagSeconds": 1800,
                                                    "lastSuccessfulTime": "2024-01-31T03:00:00Z"}, name="standby")
    fresh = resource(MLFLOW_MIRROR, MIRROR_SPEC, None, name="fresh")
    metrics = Metrics()
    metrics.watch(lambda: [Seen.of(standby), Seen.of(fresh)])
    sample = metrics.registry.get_sample_value
    assert sample("ferry_mirror_lag_seconds", {"namespace": "ml", "name": "standby"}) == 1800
    assert sample("ferry_mirror_lag_seconds", {"namespace": "ml", "name": "fresh"}) is None  # never synced: no lag known
    labels = {"kind": "MlflowMirror", "namespace": "ml", "name": "standby"}
    assert sample("ferry_last_successful_timestamp_seconds", labels) == 1706670000
    assert sample("ferry_schedule_period_seconds", labels) == 86400
