"""The chart's alert rules are valid Prometheus rules and fire when they should (promtool)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.packaging.helm import CHART, ERROR, chart_copy_with_values, lint

HERE = Path(__file__).resolve().parent
needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="Debian's prometheus is not installed")


@needs_promtool
def test_promtool_checks_the_rules() -> None:
    done = subprocess.run(["promtool", "check", "rules", str(CHART / "files" / "alerts.yaml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "SUCCESS: 3 rules found" in done.stdout, done.stdout + done.stderr


@needs_promtool
def test_promtool_unit_tests_of_the_rules() -> None:
    done = subprocess.run(["promtool", "test", "rules", "alerts_test.yaml"], cwd=HERE, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_chart_with_service_monitor_and_prometheus_rule_lints(tmp_path: Path) -> None:
    on = {"metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}}
    assert all(severity < ERROR for severity, _ in lint(chart_copy_with_values(tmp_path, on)))
    bad = {"metrics": {"serviceMonitor": {"interval": "often"}}}
    assert (ERROR, "values.yaml") in lint(chart_copy_with_values(tmp_path / "bad", bad))
