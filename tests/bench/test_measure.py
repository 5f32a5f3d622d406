"""The benchmark's instruments: request counts from a real server's access log, peak RSS, failures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bench.lower_bound import read_experiment
from bench.measure import AccessLog, endpoint, is_write, run_measured, writes
from devstack.mlflow_server import MlflowServer
from devstack.workload import WORKLOADS, artifact_files, seed


def test_requests_counted_are_those_the_server_served(mlflow_src: MlflowServer, unique: str, tmp_path: Path) -> None:
    log = AccessLog(mlflow_src.log_path, "src")
    script = (
        "import requests, sys\n"
        "s = requests.Session()\n"
        "for _ in range(7):\n"
        "    s.get(sys.argv[1] + '/api/2.0/mlflow/experiments/get-by-name', params={'experiment_name': 'x'})\n"
        "s.get(sys.argv[1] + '/health')\n"
    )
    sample = run_measured([sys.executable, "-c", script, mlflow_src.uri], env=dict(os.environ),
                          log_path=tmp_path / "out.log", logs=[log], server_pids=[mlflow_src.pid or 0])
    assert sample.ok
    assert sample.requests == 7  # the health check is not the tool's work
    assert sample.endpoints == {"GET /api/2.0/mlflow/experiments/get-by-name": 7}
    assert sample.by_server == {"src": sample.endpoints}
    assert sample.server_cpu_seconds >= 0


def test_endpoints_fold_ids_and_artifact_paths() -> None:
    assert endpoint("/api/2.0/mlflow/runs/get?run_id=abc") == "/api/2.0/mlflow/runs/get"
    assert endpoint("/api/2.0/mlflow-artifacts/artifacts?path=1/abc") == "/api/2.0/mlflow-artifacts/artifacts"
    assert endpoint("/ajax-api/2.0/mlflow/metrics/get-history-bulk") == "/ajax-api/2.0/mlflow/metrics/get-history-bulk"
    assert endpoint("/api/2.0/mlflow-artifacts/artifacts/1/0123456789abcdef0123/artifacts/model/MLmodel") == \
        "/api/2.0/mlflow-artifacts/artifacts/*"
    assert endpoint("/api/2.0/mlflow/logged-models/m-0123456789abcdef0123456789abcdef") == \
        "/api/2.0/mlflow/logged-models/*"


def test_writes_are_the_requests_that_change_the_server() -> None:
    assert is_write("POST /api/2.0/mlflow/runs/create") and is_write("POST /api/2.0/mlflow/runs/delete-tag")
    assert is_write("PUT /api/2.0/mlflow-artifacts/artifacts/*") and is_write("PATCH /api/2.0/mlflow/logged-models/*")
    assert not is_write("POST /api/2.0/mlflow/runs/search") and not is_write("POST /api/3.0/mlflow/traces/batchGet")
    assert not is_write("GET /api/2.0/mlflow/runs/get") and not is_write("POST /api/2.0/mlflow/metrics/get-history")
    assert writes({"POST /api/2.0/mlflow/runs/search": 5, "POST /api/2.0/mlflow/runs/log-batch": 2}) == 2


def test_peak_rss_is_the_childs_and_failures_keep_their_last_line(tmp_path: Path) -> None:
    hog = "b = bytearray(200 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); print('done')"
    big = run_measured([sys.executable, "-c", hog], env=dict(os.environ), log_path=tmp_path / "a.log",
                       logs=[], server_pids=[])
    small = run_measured([sys.executable, "-c", "print('done')"], env=dict(os.environ),
                         log_path=tmp_path / "b.log", logs=[], server_pids=[])
    assert big.ok and small.ok
    assert big.peak_rss_mb >= 200 > small.peak_rss_mb

    failed = run_measured([sys.executable, "-c", "import sys; print('working'); sys.exit('Error: no such model')"],
                          env=dict(os.environ), log_path=tmp_path / "c.log", logs=[], server_pids=[])
    assert (failed.ok, failed.returncode, failed.error) == (False, 1, "Error: no such model")


def test_lower_bound_reads_every_metric_point_and_artifact(mlflow_src: MlflowServer, unique: str,
                                                          tmp_path: Path) -> None:
    workload = WORKLOADS["tiny"]
    seeded = seed(mlflow_src.uri, workload, prefix=f"lb-{unique}-")
    experiment = next(iter(seeded.experiments))
    assert read_experiment(mlflow_src.uri, experiment) == {"metric_points": workload.metric_points}
    files_per_run = len(artifact_files("r", 0))
    assert read_experiment(mlflow_src.uri, experiment, artifacts_to=tmp_path) == {
        "metric_points": workload.metric_points, "artifact_files": workload.total_runs * files_per_run}
    assert len(list(tmp_path.rglob("MLmodel"))) == workload.total_runs
