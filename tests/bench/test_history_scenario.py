"""The history scenario's declaration, its exports through both reading paths, its checks and its table."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from bench import history, history_checks, history_report, scenarios
from bench.__main__ import _parse
from bench.harness import Measured
from bench.measure import AccessLog, Sample
from bench.stage import Stage
from devstack.mlflow_server import MlflowServer
from ferry.tracking.settings import TrackingSettings


def test_the_history_scenario_is_known_and_its_shape_has_flags() -> None:
    args = _parse(["--only", "history"])
    assert args.scenarios == ("history",) and args.history_shape == history.Shape(200, 5, 1000)
    assert "history" in scenarios.SCENARIOS and "history" in scenarios.ALONE
    assert "history" not in scenarios.QUICK_SCENARIOS
    small = _parse(["--only", "history", "--history-runs", "3", "--history-metrics", "2", "--history-steps", "7"])
    assert small.history_shape == history.Shape(3, 2, 7) and small.history_shape.points == 42
    # (b) is the fallback at the engine's default, whatever the bench was started with.
    assert TrackingSettings().history_workers == history.DEFAULT_WORKERS
    assert history.VARIANTS[0] is history.BULK and history.VARIANTS[-1].tool.name == "mlflow-export-import"


def _export(variant: history.Variant, server: MlflowServer, experiment: str, out: Path) -> dict[str, int]:
    """Run the variant's argv as the harness does; the history requests the server saw, by endpoint."""
    log = AccessLog(server.log_path)
    log.mark()
    env = {**os.environ, "MLFLOW_TRACKING_URI": server.uri}
    done = subprocess.run(variant.argv(experiment, out), env=env, cwd=out.parent, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    served = log.requests_since_mark()
    return {e: served[e] for e in history.HISTORY_ENDPOINTS if served[e]}


def test_both_paths_export_the_seeded_points_and_the_checks_see_a_changed_one(
        mlflow_src: MlflowServer, tmp_path: Path, unique: str) -> None:
    shape = history.Shape(runs=3, metrics=2, steps=30)
    experiment = f"history-{unique}"
    seeded = history.seed(mlflow_src.uri, shape, experiment, threads=2)
    assert seeded.runs == 3 and seeded.metric_points == 180

    bulk, per_metric = tmp_path / "bulk" / "export", tmp_path / "per-metric" / "export"
    for out in (bulk, per_metric):
        out.parent.mkdir()
    assert _export(history.BULK, mlflow_src, experiment, bulk) == {history.BULK_ENDPOINT: 2}   # one per key
    assert _export(history.PER_METRIC, mlflow_src, experiment, per_metric) == {history.PER_METRIC_ENDPOINT: 6}
    assert history_checks.as_seeded(bulk, shape) is None
    assert history_checks.same_histories(per_metric, bulk) is None

    run_json = sorted(per_metric.rglob("run.json"))[1]
    doc = json.loads(run_json.read_text())
    doc["mlflow"]["metrics"]["metric_1"][7]["value"] += 0.5
    run_json.write_text(json.dumps(doc))
    found = history_checks.same_histories(per_metric, bulk)
    assert found is not None and found.startswith("1 of 6 histories differ") and "metric_1" in found
    assert "(1 missing, 1 not expected)" in found
    assert history_checks.as_seeded(per_metric, shape) is not None

    del doc["mlflow"]["metrics"]["metric_0"][:5]
    run_json.write_text(json.dumps(doc))
    found = history_checks.as_seeded(per_metric, shape)
    assert found is not None and found.startswith("2 of 6 histories differ from what was logged")
    run_json.unlink()
    assert history_checks.as_seeded(per_metric, shape) == "2 of 3 runs exported"
    assert history_checks.same_histories(per_metric, bulk) == "1 of the reference export's 3 runs not exported"


def _sample(seconds: float, bulk: int, per_metric: int, other: int, error: str = "") -> Sample:
    endpoints = {history.BULK_ENDPOINT: bulk, history.PER_METRIC_ENDPOINT: per_metric, "POST /api/2.0/mlflow/runs/search": other}
    return Sample(seconds=seconds, peak_rss_mb=100.0, requests=bulk + per_metric + other, server_cpu_seconds=1.0,
                  returncode=1 if error else 0, error=error, endpoints={e: n for e, n in endpoints.items() if n})


def test_the_table_gives_each_variant_its_ratios_to_the_bulk_export() -> None:
    shape = history.Shape(10, 2, 5)
    a, b, c, d = (Measured(history.HISTORY, v.label, "export") for v in history.VARIANTS)
    a.samples = [_sample(2.0, 2, 0, 8), _sample(4.0, 2, 0, 8), _sample(3.0, 2, 0, 8)]
    b.samples = [_sample(6.0, 0, 20, 8)]
    c.samples = [_sample(12.0, 0, 20, 8), _sample(1.0, 0, 0, 0, error="3 of 20 histories differ")]
    d.samples = [_sample(1.0, 0, 0, 0, error="Traceback")]
    text = history_report.section([a, b, c, d], shape, workers=4)
    rows = {line.split(" | ")[1]: line for line in text.splitlines() if line.startswith("| (")}
    assert rows[history.BULK.label] == "| (a) | ferry, auto (bulk) | 3.00 | 1.00 | 10 | 1.00 | 2 bulk | as logged |"
    assert "| 6.00 | 2.00 | 28 | 2.80 | 20 per-metric | same points as (a) |" in rows[history.PER_METRIC.label]
    assert "| 12.00 | 4.00 | 28 | 2.80 |" in rows[history.PER_METRIC_1.label]
    assert "1 of 2 repetitions failed: 3 of 20 histories differ" in rows[history.PER_METRIC_1.label]
    assert rows[history.PEER.label].endswith("| | | | | | failed: Traceback |")
    assert "10 runs x 2 metrics x 5 steps (20 histories, 100 points)" in text

    goals = history_report.targets([a, b, c, d], shape)
    assert [(g.measured, g.met) for g in goals] == [(0.0, True), (None, False), (None, False)]
    assert "1 of 2 repetitions" in goals[1].note and "3 of 20 histories differ" in goals[1].note


def test_the_databricks_export_reads_per_metric_through_the_stand_in(tmp_path: Path) -> None:
    """(e) on a stage of its own: the workspace's environment reaches ferry, which never asks for bulk."""
    shape = history.Shape(runs=2, metrics=2, steps=5)
    stage = Stage(root=tmp_path / "servers", workers=1)
    try:
        case = history._databricks_case(stage, shape)
        backend = stage.servers[history.DATABRICKS_SRC]
        assert case.tool == history.DATABRICKS and backend.uri == case.steps[0].tracking_uri
        log = AccessLog(backend.log_path)
        log.mark()
        rep_dir = tmp_path / "rep0"
        rep_dir.mkdir()
        env = {**os.environ, "MLFLOW_TRACKING_URI": backend.uri}   # as the harness sets it: env(1) overrides
        done = subprocess.run(case.steps[0].argv(rep_dir, 0), env=env, cwd=rep_dir, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        served = log.requests_since_mark()
        assert served[history.PER_METRIC_ENDPOINT] == 4 and served[history.BULK_ENDPOINT] == 0
        assert case.steps[0].check is not None and case.steps[0].check(rep_dir, 0) is None
        (next(rep_dir.rglob("run.json"))).unlink()
        assert case.steps[0].check(rep_dir, 0) == "1 of 2 runs exported"
    finally:
        stage.stop()
