"""The operator's /metrics, scraped by a real Prometheus, with the chart's alert rules loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.cluster.pytest_plugin import wait_for
from devstack.missing import missing
from devstack.procs import free_port
from devstack.prometheus import PrometheusServer, available

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.usefixtures("needs_prometheus")]


@pytest.fixture
def needs_prometheus() -> None:
    if not available():
        missing("prometheus is not installed (Debian's prometheus, hack/setup.sh)")


ALERTS = Path(__file__).resolve().parents[2] / "charts" / "mlflow-ferry" / "files" / "alerts.yaml"


def value(prometheus: PrometheusServer, expr: str) -> float | None:
    result = prometheus.query(expr)
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_phases_results_failures_and_stuck_pods(operator, res, tmp_path) -> None:
    prometheus = PrometheusServer(tmp_path / "prometheus", [f"127.0.0.1:{operator.metrics_port}"], [ALERTS]).start()
    try:
        res.claim("backups")
        res.create("MlflowExport", "refused", {
            "source": {"trackingUri": f"http://127.0.0.1:{free_port()}"}, "objects": {"experiments": ["x"]},
            "destination": {"pvc": {"claimName": "backups"}}, "job": {"backoffLimit": 0},
        })  # fmt: skip
        res.create("MlflowExport", "stuck", {
            "source": {"trackingUri": "http://127.0.0.1:9", "credentialsSecret": {"name": "nowhere"}},
            "objects": {"experiments": ["x"]}, "destination": {"pvc": {"claimName": "backups"}},
        })  # fmt: skip
        res.wait_phase("MlflowExport", "refused", {"Failed"}, timeout=120)
        failed = 'ferry_resources{kind="MlflowExport",phase="Failed"}'
        wait_for(lambda: value(prometheus, failed) == 1, 60, "the Failed export scraped")
        assert value(prometheus, 'ferry_results_total{kind="MlflowExport",phase="Failed"}') == 1
        assert value(prometheus, 'ferry_failures_total{kind="MlflowExport",reason="Failed"}') == 1
        assert value(prometheus, 'ferry_job_duration_seconds_count{kind="MlflowExport",phase="Failed"}') == 1
        stuck = 'ferry_jobs_not_starting{kind="MlflowExport",name="stuck",reason="CreateContainerConfigError"}'
        wait_for(lambda: value(prometheus, stuck) == 1, 60, "the stuck export scraped")
        assert value(prometheus, 'ferry_resources{kind="MlflowExport",phase="Pending"}') == 1
        assert value(prometheus, "sum(ferry_reconcile_errors_total)") in (None, 0.0)
        loaded = {rule["name"]: rule for rule in prometheus.rules()}
        assert set(loaded) == {"FerryScheduleNotSucceeding", "FerryResourceFailed", "FerryJobNotStarting",
                               "FerryMirrorLagging", "FerryOperatorWatchesRestarting"}
        assert loaded["FerryMirrorLagging"]["state"] == "inactive"  # no mirror here
        assert value(prometheus, "ferry_watch_restarts_total") == 0  # the API server never went away
        assert loaded["FerryOperatorWatchesRestarting"]["state"] == "inactive"
        wait_for(lambda: {r["name"]: r for r in prometheus.rules()}["FerryJobNotStarting"]["state"] == "pending",
                 30, "the stuck-pod alert pending (it fires after 5m)")
    finally:
        prometheus.stop()
