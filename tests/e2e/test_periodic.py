"""Periodic work (schedules, imports waiting for an export) puts no finalizer on users' objects, so
they can be deleted while the operator is away; and concurrencyPolicy Forbid skips a run while one
is still active."""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException

from devstack.cluster.pytest_plugin import wait_for
from ferry.api import GROUP, VERSION
from ferry.controller.periodic import KOPF_FINALIZER
from tests.e2e.conftest import Resources

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

NOWHERE = "http://127.0.0.1:9"
KF = {"url": NOWHERE, "tokenSecret": {"name": "kf"}}


def gone(res: Resources, kind: str, name: str) -> bool:
    try:
        res.get(kind, name)
    except ApiException as err:
        return err.status == 404
    return False


def finalizers(res: Resources, kind: str, name: str) -> list[str]:
    return res.get(kind, name)["metadata"].get("finalizers") or []


def test_deleted_while_the_operator_is_away(operator, res) -> None:
    res.secret("kf", {"token": "t"})
    res.create("KiroframeSync", "nightly", {"schedule": "0 3 * * *", "source": {"trackingUri": NOWHERE}, "kiroframe": KF})
    res.create("MlflowImport", "restore", {"destination": {"trackingUri": NOWHERE}, "source": {"exportRef": {"name": "later"}}})
    # As an older version (with kopf timers) left its scheduled objects: with kopf's finalizer.
    res.custom.create_namespaced_custom_object(GROUP, VERSION, res.namespace, "mlflowexports", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "MlflowExport",
        "metadata": {"name": "weekly", "finalizers": [KOPF_FINALIZER]},
        "spec": {"schedule": "0 4 * * 0", "source": {"trackingUri": NOWHERE}, "objects": {"experiments": ["e"]},
                 "destination": {"pvc": {"claimName": "backups"}}},
    })  # fmt: skip

    wait_for(lambda: res.status("KiroframeSync", "nightly").get("nextScheduleTime"), 30, "the sync's schedule looked at")
    wait_for(lambda: res.status("MlflowExport", "weekly").get("nextScheduleTime"), 30, "the export's schedule looked at")
    for kind, name in (("KiroframeSync", "nightly"), ("MlflowExport", "weekly")):
        status = res.status(kind, name)  # what `kubectl get` shows before the first run
        assert status["phase"] == "Pending"
        assert status["message"] == f"Waiting for the first run at {status['nextScheduleTime']}"
    res.wait_event("restore", "WaitingForExport")
    assert res.status("MlflowImport", "restore")["phase"] == "Pending"
    wait_for(lambda: not finalizers(res, "MlflowExport", "weekly"), 30, "the old finalizer released")
    assert finalizers(res, "KiroframeSync", "nightly") == [] and finalizers(res, "MlflowImport", "restore") == []
    assert not res.jobs()

    operator.stop()
    objects = [("KiroframeSync", "nightly"), ("MlflowImport", "restore"), ("MlflowExport", "weekly")]
    for kind, name in objects:
        res.delete(kind, name)
    wait_for(lambda: all(gone(res, kind, name) for kind, name in objects), 15, "deletion without the operator")


def test_forbid_skips_a_run_while_one_is_active(operator, res, unanswering) -> None:
    res.secret("kf", {"token": "t"})
    res.create("KiroframeSync", "busy", {
        "schedule": "* * * * * */6", "concurrencyPolicy": "Forbid",
        "source": {"trackingUri": unanswering}, "kiroframe": KF,
    })  # fmt: skip
    wait_for(lambda: res.jobs("busy"), 60, "the first run's Job")
    skipped = res.wait_event("busy", "RunSkipped", timeout=60)
    assert "(Forbid)" in skipped.message
    (job,) = res.jobs("busy")  # the first run never finishes, so no other starts
    assert job.metadata.name in skipped.message
    status = res.status("KiroframeSync", "busy")
    assert status["missedRuns"] >= 1 and [a["name"] for a in status["active"]] == [job.metadata.name]
