"""Scenarios 3, 5 and 6: a KiroframeSync on a seconds schedule, a Job that fails, deletion in the
middle of a Job (operator restarts in the middle of one: test_faults.py)."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from devstack.cluster.pytest_plugin import wait_for
from devstack.kiroframe import KiroframeStandIn
from devstack.procs import free_port

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.fixture
def kiroframe():
    standin = KiroframeStandIn(token="kf-e2e-token").start()
    yield standin
    standin.stop()


def test_kiroframe_sync_schedule(operator, res, mlflow_src, kiroframe, unique) -> None:
    client = MlflowClient(mlflow_src.uri)
    exp_id = client.create_experiment(f"kf-{unique}")
    client.set_terminated(client.create_run(exp_id).info.run_id)
    res.secret("kf", {"token": "kf-e2e-token"})
    res.create("KiroframeSync", "sync", {
        "schedule": "* * * * * */6",
        "source": {"trackingUri": mlflow_src.uri},
        "kiroframe": {"url": kiroframe.url, "tokenSecret": {"name": "kf"}},
        "successfulJobsHistoryLimit": 1,
    })  # fmt: skip
    first = wait_for(lambda: (s := res.status("KiroframeSync", "sync")).get("watermark") and s, 120, "first sync")
    assert first["lastResult"]["phase"] == "Succeeded" and first["nextScheduleTime"] > first["lastScheduleTime"]
    runs_pushed = len(kiroframe.records(2))
    assert runs_pushed >= 1
    client.set_terminated(client.create_run(exp_id).info.run_id)
    second = wait_for(
        lambda: (s := res.status("KiroframeSync", "sync")).get("lastResult", {}).get("jobName")
        != first["lastResult"]["jobName"] and s.get("lastResult", {}).get("phase") == "Succeeded" and s,
        120, "second sync",
    )  # fmt: skip
    assert second["watermark"] >= first["watermark"]
    assert second["lastResult"]["counts"]["runs"] < runs_pushed + 1  # incremental: not everything again
    wait_for(lambda: len([j for j in res.jobs("sync") if j.status.succeeded]) <= 1, 60, "history pruned to 1")
    # suspend: no new Jobs
    res.patch("KiroframeSync", "sync", {"spec": {"suspend": True}})
    wait_for(lambda: not res.status("KiroframeSync", "sync").get("active"), 60, "active run to finish")
    names = {j.metadata.name for j in res.jobs("sync")}
    last = res.status("KiroframeSync", "sync")["lastScheduleTime"]
    passed = [wait_for(lambda: (n := res.status("KiroframeSync", "sync")["nextScheduleTime"]) > last and n, 30,
                       "the operator's look past the last run")]
    for _ in range(2):  # two scheduled times pass while suspended, each looked at by the operator
        passed.append(wait_for(lambda: (n := res.status("KiroframeSync", "sync")["nextScheduleTime"]) > passed[-1]
                               and n, 30, f"the operator's look past the scheduled time {passed[-1]}"))
    assert {j.metadata.name for j in res.jobs("sync")} <= names
    assert res.status("KiroframeSync", "sync")["lastScheduleTime"] == last


def test_failing_job_is_failed_without_retry_storm(operator, res) -> None:
    refused = f"http://127.0.0.1:{free_port()}"
    res.claim("backups")
    res.create("MlflowExport", "broken", {
        "source": {"trackingUri": refused},
        "objects": {"experiments": ["anything"]},
        "destination": {"pvc": {"claimName": "backups"}},
        "job": {"backoffLimit": 0},
    })  # fmt: skip
    status = res.wait_phase("MlflowExport", "broken", {"Failed", "Succeeded", "PartiallyFailed"}, timeout=120)
    assert status["phase"] == "Failed"
    assert "127.0.0.1" in status["message"], status["message"]
    assert len(res.jobs("broken")) == 1
    pods = res.core.list_namespaced_pod(res.namespace, label_selector="ferry.dev/name=broken").items
    assert len(pods) == 1
    res.wait_event("broken", "Failed", "Warning")


def test_delete_while_running(operator, res, mlflow_src, unique) -> None:
    """The Job and its pod go with the resource. (Operator restarts: tests/e2e/test_faults.py.)"""
    client = MlflowClient(mlflow_src.uri)
    exp = f"slow-{unique}"
    exp_id = client.create_experiment(exp)
    for _ in range(3):
        client.set_terminated(client.create_run(exp_id).info.run_id)
    res.claim("backups")
    spec = {
        "source": {"trackingUri": mlflow_src.uri},
        "objects": {"experiments": [exp]},
        "destination": {"pvc": {"claimName": "backups"}},
    }
    res.create("MlflowExport", "doomed", spec)
    wait_for(lambda: res.jobs("doomed"), 60, "Job created")
    res.delete("MlflowExport", "doomed")
    wait_for(lambda: not res.jobs("doomed"), 60, "Job deleted by the owner cascade")
    wait_for(lambda: not res.core.list_namespaced_pod(res.namespace, label_selector="ferry.dev/name=doomed").items,
             60, "pod deleted")  # fmt: skip
    assert operator.running


def test_a_pod_that_cannot_start_is_pending_with_its_reason_then_failed(operator, res) -> None:
    """A missing credentials Secret and a missing claim: never 'Running'; the kubelet's reason within
    seconds; Failed after spec.job.startTimeoutSeconds, and the Job is gone so nothing starts later."""
    res.claim("backups")
    source = {"trackingUri": "http://127.0.0.1:9"}
    res.create("MlflowExport", "no-secret", {
        "source": {**source, "credentialsSecret": {"name": "missing-credentials"}},
        "objects": {"experiments": ["x"]}, "destination": {"pvc": {"claimName": "backups"}},
        "job": {"startTimeoutSeconds": 20},
    })  # fmt: skip
    res.create("MlflowExport", "no-claim", {
        "source": source, "objects": {"experiments": ["x"]}, "destination": {"pvc": {"claimName": "missing-claim"}},
        "job": {"startTimeoutSeconds": 20},
    })  # fmt: skip
    res.create("MlflowExport", "nightly-no-claim", {  # a schedule's run times out the same way
        "source": source, "objects": {"experiments": ["x"]}, "destination": {"pvc": {"claimName": "missing-claim"}},
        "schedule": "* * * * * */5", "job": {"startTimeoutSeconds": 20},
    })  # fmt: skip
    expected = {"no-secret": ("CreateContainerConfigError", 'secret "missing-credentials" not found'),
                "no-claim": ("ContainerCreating", 'persistentvolumeclaim "missing-claim" not found')}
    for name, (reason, words) in expected.items():
        stuck = wait_for(lambda n=name, w=words: (s := res.status("MlflowExport", n)).get("phase") == "Pending"
                         and w in (s.get("message") or "") and s, 15, f"{name}: the pod's reason in status")
        assert "cannot start" in stuck["message"]
        assert {c["type"]: c for c in stuck["conditions"]}["Succeeded"]["status"] == "Unknown"
        res.wait_event(name, reason, "Warning")
    for name, (_, words) in expected.items():
        failed = res.wait_phase("MlflowExport", name, {"Failed", "Running", "Succeeded"}, timeout=90)
        assert failed["phase"] == "Failed" and "did not start within 20 s" in failed["message"], failed
        assert words in failed["message"]
        wait_for(lambda n=name: not res.jobs(n), 30, f"{name}: Job removed")
    phases = [e.reason for name in expected for e in res.events(name)]
    assert "Running" not in phases
    run = wait_for(lambda: (s := res.status("MlflowExport", "nightly-no-claim")).get("lastResult") and s, 120,
                   "the scheduled run to time out")
    assert run["lastResult"]["phase"] == "Failed" and "did not start within 20 s" in run["lastResult"]["message"]
    assert 'persistentvolumeclaim "missing-claim" not found' in run["lastResult"]["message"]
    assert not run.get("active"), run  # the schedule is not held back by it (concurrencyPolicy Forbid)
    wait_for(lambda: not [j for j in res.jobs("nightly-no-claim") if j.metadata.name == run["lastResult"]["jobName"]],
             30, "the run's Job removed")
