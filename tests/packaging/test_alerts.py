"""The chart's alert rules are valid Prometheus rules and fire when they should (promtool)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from devstack.missing import missing
from tests.packaging.helm import CHART, ERROR, chart_copy_with_values, lint

HERE = Path(__file__).resolve().parent


@pytest.fixture
def needs_promtool() -> None:
    if shutil.which("promtool") is None:
        missing("promtool is not installed (Debian's prometheus, hack/setup.sh)")


@pytest.mark.usefixtures("needs_promtool")
def test_promtool_checks_the_rules() -> None:
    done = subprocess.run(["promtool", "check", "rules", str(CHART / "files" / "alerts.yaml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "SUCCESS: 5 rules found" in done.stdout, done.stdout + done.stderr


@pytest.mark.usefixtures("needs_promtool")
def test_promtool_unit_tests_of_the_rules() -> None:
    done = subprocess.run(["promtool", "test", "rules", "alerts_test.yaml"], cwd=HERE, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_chart_with_service_monitor_and_prometheus_rule_lints(tmp_path: Path) -> None:
    on = {"metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True, "mirrorLagSeconds": 1800}}}
    assert all(severity < ERROR for severity, _ in lint(chart_copy_with_values(tmp_path, on)))
    bad = {"metrics": {"serviceMonitor": {"interval": "often"}}}
    assert (ERROR, "values.yaml") in lint(chart_copy_with_values(tmp_path / "bad", bad))
    zero = {"metrics": {"prometheusRule": {"mirrorLagSeconds": 0}}}
    assert (ERROR, "values.yaml") in lint(chart_copy_with_values(tmp_path / "zero", zero))


def test_the_mirror_lag_threshold_is_the_charts_value() -> None:
    """The chart replaces the threshold promtool tests with metrics.prometheusRule.mirrorLagSeconds: the
    text it replaces is in the rules, and the rules' own threshold is the value's default."""
    template = (CHART / "templates" / "metrics.yaml").read_text()
    (replaced,) = re.findall(r'replace "([^"]+)" \$lag', template)
    assert replaced in (CHART / "files" / "alerts.yaml").read_text()
    default = yaml.safe_load((CHART / "values.yaml").read_text())["metrics"]["prometheusRule"]["mirrorLagSeconds"]
    assert replaced == f"ferry_mirror_lag_seconds > {default}"
    assert 'printf "ferry_mirror_lag_seconds > %d"' in template
