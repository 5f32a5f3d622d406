"""The experiment commands end to end, as users run them: subprocesses of the console scripts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devstack.mlflow_server import MlflowServer
from devstack.procs import free_port
from ferry.engine.runs import ABANDONED_TAG, SOURCE_RUN_ID_TAG
from ferry.tracking import TrackingClient, tags_of
from tests.engine.conftest import Pair
from tests.engine.seed import Seeded, make_run, run_view

BIN = Path(sys.executable).parent


def cli(name: str, *args: str, uri: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "FERRY_HTTP_MAX_ATTEMPTS": "1", **env}
    if uri:
        full_env["MLFLOW_TRACKING_URI"] = uri
    return subprocess.run([str(BIN / name), *args], capture_output=True, text=True, env=full_env, timeout=300)


def by_source(client: TrackingClient, experiment_id: str) -> dict[str, str]:
    return {tags_of(r["data"])[SOURCE_RUN_ID_TAG]: r["info"]["run_id"]
            for r in client.search_runs([experiment_id], run_view_type="ALL")}


def test_experiment_round_trip_with_deleted_runs_and_parents(pair: Pair, pair_seeded: Seeded, tmp_path: Path,
                                                             unique: str) -> None:
    seeded, mlflow_src, mlflow_dst = pair_seeded, pair.src, pair.dst
    src_client, dst_client = pair.src_client, pair.dst_client
    out = tmp_path / "exp"
    done = cli("export-experiment", "--experiment", seeded.experiment_name, "--output-dir", str(out),
               "--export-deleted-runs", "True", "--export-permissions", "True", uri=mlflow_src.uri)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("Warning:") == 1 and "--export-permissions" in done.stderr
    doc = json.loads((out / "experiment.json").read_text())
    assert sorted(doc["mlflow"]["runs"]) == sorted(seeded.all_runs)
    assert doc["info"]["num_ok_runs"] == 5 and doc["info"]["failed_runs"] == []

    name = f"imported-{unique}"
    for _ in range(2):  # the second import finds everything there and creates nothing
        done = cli("import-experiment", "--experiment-name", name, "--input-dir", str(out), "--use-src-user-id", "True",
                   uri=mlflow_dst.uri)
        assert done.returncode == 0, done.stderr
    exp = dst_client.get_experiment_by_name(name)
    assert exp is not None and tags_of(exp)["team"] == "ferry"
    mapping = by_source(dst_client, exp["experiment_id"])
    assert sorted(mapping) == sorted(seeded.all_runs)
    for src_id, dst_id in mapping.items():
        assert run_view(dst_client, dst_id) == run_view(src_client, src_id), src_id
    child = dst_client.get_run(mapping[seeded.child])
    assert tags_of(child["data"])["mlflow.parentRunId"] == mapping[seeded.parent]
    assert dst_client.get_run(mapping[seeded.deleted])["info"]["lifecycle_stage"] == "deleted"


def test_bulk_export_and_import_with_rename(seeded: Seeded, mlflow_src: MlflowServer, mlflow_dst: MlflowServer,
                                            dst_client: TrackingClient, tmp_path: Path, unique: str) -> None:
    out = tmp_path / "bulk"
    done = cli("export-experiments", "--experiments", f"{seeded.experiment_id}", "--output-dir", str(out),
               "--quiet", uri=mlflow_src.uri)
    assert done.returncode == 0, done.stderr
    index = json.loads((out / "experiments.json").read_text())["mlflow"]["experiments"]
    assert [(e["id"], e["ok_runs"]) for e in index] == [(seeded.experiment_id, 4)]
    renames = tmp_path / "renames.csv"
    renames.write_text(f"seeded-,bulk-{unique}-\n")
    done = cli("import-experiments", "--input-dir", str(out), "--experiment-rename-file", str(renames),
               uri=mlflow_dst.uri)
    assert done.returncode == 0, done.stderr
    exp = dst_client.get_experiment_by_name(seeded.experiment_name.replace("seeded-", f"bulk-{unique}-"))
    assert exp is not None
    assert sorted(by_source(dst_client, exp["experiment_id"])) == sorted(seeded.active_runs)


def test_killed_import_resumes_to_exactly_the_source_set(mlflow_src: MlflowServer, mlflow_dst: MlflowServer,
                                                         src_client: TrackingClient, dst_client: TrackingClient,
                                                         tmp_path: Path, unique: str) -> None:
    from mlflow import MlflowClient

    src = MlflowClient(mlflow_src.uri)
    exp_id = src.create_experiment(f"resume-{unique}")
    runs = [make_run(src, exp_id, f"r{i}", i) for i in range(12)]
    for run_id in runs:
        src.log_batch(run_id, params=[], metrics=[])
        src.log_text(run_id, "x" * 1000, "notes/a.txt")
    out = tmp_path / "exp"
    assert cli("export-experiment", "--experiment", exp_id, "--output-dir", str(out), uri=mlflow_src.uri).returncode == 0
    name = f"resume-{unique}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_dst.uri}
    proc = subprocess.Popen([str(BIN / "import-experiment"), "--experiment-name", name, "--input-dir", str(out),
                             "--workers", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        exp = dst_client.get_experiment_by_name(name)
        if exp and len(list(dst_client.search_runs([exp["experiment_id"]], run_view_type="ALL"))) >= 4:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    assert proc.wait() == -signal.SIGKILL, "the import finished before it could be killed"
    done = cli("import-experiment", "--experiment-name", name, "--input-dir", str(out), uri=mlflow_dst.uri)
    assert done.returncode == 0, done.stderr
    exp = dst_client.get_experiment_by_name(name)
    assert exp is not None
    active = list(dst_client.search_runs([exp["experiment_id"]]))
    assert sorted(tags_of(r["data"])[SOURCE_RUN_ID_TAG] for r in active) == sorted(runs)
    assert all(r["info"]["status"] == "FINISHED" and r["info"]["end_time"] for r in active)


def test_import_killed_again_and_again_leaves_nothing_a_later_export_takes_for_data(
        mlflow_src: MlflowServer, mlflow_dst: MlflowServer, dst_client: TrackingClient, tmp_path: Path,
        unique: str) -> None:
    """SIGKILL each time it has created 3 more runs, 4 workers, rerun each time: in the end exactly the
    source runs are active, every deleted run is a marked leftover, and an export of the destination
    with deleted runs carries exactly the source runs."""
    from mlflow import MlflowClient

    src = MlflowClient(mlflow_src.uri)
    exp_id = src.create_experiment(f"kills-{unique}")
    runs = [make_run(src, exp_id, f"r{i}", i) for i in range(30)]
    for run_id in runs:
        src.log_batch(run_id, params=[], metrics=[])
        src.log_text(run_id, "x" * 2000, "notes/a.txt")
    out = tmp_path / "exp"
    assert cli("export-experiment", "--experiment", exp_id, "--output-dir", str(out), uri=mlflow_src.uri).returncode == 0
    name = f"kills-{unique}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_dst.uri}
    argv = [str(BIN / "import-experiment"), "--experiment-name", name, "--input-dir", str(out), "--workers", "4"]

    def created() -> int:
        exp = dst_client.get_experiment_by_name(name)
        return len(list(dst_client.search_runs([exp["experiment_id"]], run_view_type="ALL"))) if exp else 0

    kills, at_kill = 0, 0
    while True:  # killed each time it has created 3 more runs, until 4 kills; the last run finishes
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while kills < 4 and proc.poll() is None and time.monotonic() < deadline and created() < at_kill + 3:
            time.sleep(0.02)
        if proc.poll() is None and kills < 4:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills, at_kill = kills + 1, created()
            continue
        assert proc.wait(timeout=120) == 0
        break
    exp = dst_client.get_experiment_by_name(name)
    assert exp is not None
    all_runs = list(dst_client.search_runs([exp["experiment_id"]], run_view_type="ALL"))
    active = [r for r in all_runs if r["info"]["lifecycle_stage"] == "active"]
    deleted = [r for r in all_runs if r["info"]["lifecycle_stage"] == "deleted"]
    assert sorted(tags_of(r["data"])[SOURCE_RUN_ID_TAG] for r in active) == sorted(runs)
    assert all(tags_of(r["data"]).get(ABANDONED_TAG) == "true" for r in deleted)
    again = cli("export-experiment", "--experiment", exp["experiment_id"], "--output-dir", str(tmp_path / "back"),
                "--export-deleted-runs", "True", uri=mlflow_dst.uri)
    assert again.returncode == 0, again.stderr
    exported = {p.name for p in (tmp_path / "back" / "runs").iterdir()}
    assert exported == {r["info"]["run_id"] for r in active}
    print(f"import killed {kills} times; leftovers marked and skipped: {len(deleted)}; lost 0, duplicated 0")
    assert kills >= 3, "the import finished before it could be killed a few times"


def test_rerun_export_skips_finished_runs(seeded: Seeded, mlflow_src: MlflowServer, tmp_path: Path) -> None:
    out = tmp_path / "exp"
    assert cli("export-experiment", "--experiment", seeded.experiment_id, "--output-dir", str(out),
               uri=mlflow_src.uri).returncode == 0
    stamp = (out / "runs" / seeded.big / "run.json").stat().st_mtime_ns
    again = cli("export-experiment", "--experiment", seeded.experiment_id, "--output-dir", str(out), uri=mlflow_src.uri)
    assert again.returncode == 0 and "(4 already there)" in again.stdout
    assert (out / "runs" / seeded.big / "run.json").stat().st_mtime_ns == stamp


@pytest.mark.parametrize(("command", "args", "message"), [
    ("export-experiment", ["--experiment", "no-such-experiment", "--output-dir", "{tmp}/o"],
     "Error: experiment 'no-such-experiment' not found in MLflow at {src}"),
    ("export-run", ["--run-id", "0123abcd", "--output-dir", "{tmp}/o"],
     "Error: run '0123abcd' not found in MLflow at {src}"),
    ("import-experiment", ["--experiment-name", "x", "--input-dir", "{tmp}"],
     "Error: {tmp} is not an exported experiment: experiment.json is missing"),
    ("import-run", ["--experiment-name", "x", "--input-dir", "{tmp}/corrupt"],
     "Error: {tmp}/corrupt/run.json is corrupt: line 1: Expecting value"),
    ("export-experiment", ["--experiment", "x", "--output-dir", "{tmp}/o", "--export-deleted-runs", "maybe"],
     "Error: Invalid value for '--export-deleted-runs': 'maybe' is not a valid boolean."),
    ("export-experiment", ["--experiment", "x", "--output-dir", "{tmp}/o", "--run-start-time", "yesterday"],
     "Error: --run-start-time 'yesterday' is not YYYY-MM-DD or YYYY-MM-DD HH:MM:SS"),
    ("export-experiment", ["--experiment", "x", "--output-dir", "{tmp}/o", "--traces-since", "soon"],
     "Error: --traces-since 'soon' is not YYYY-MM-DD or YYYY-MM-DD HH:MM:SS"),
])
def test_bad_input_is_one_line_and_an_exit_code(command: str, args: list[str], message: str,
                                                mlflow_src: MlflowServer, tmp_path: Path) -> None:
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "run.json").write_text("not json")
    fill = {"tmp": str(tmp_path), "src": mlflow_src.uri}
    done = cli(command, *[a.format(**fill) for a in args], uri=mlflow_src.uri)
    assert done.returncode in (1, 2) and done.returncode != 0
    assert done.stderr.strip().startswith(message.format(**fill)), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_unreachable_server_and_missing_uri(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    done = cli("export-run", "--run-id", "abc", "--output-dir", str(tmp_path), uri=closed)
    assert done.returncode == 1
    assert done.stderr.strip() == f"Error: cannot reach MLflow at {closed}: Connection refused"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    done = subprocess.run([str(BIN / "export-run"), "--run-id", "a", "--output-dir", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2 and done.stderr.startswith("Error: MLFLOW_TRACKING_URI is not set")


def test_copy_run_between_servers(seeded: Seeded, mlflow_src: MlflowServer, mlflow_dst: MlflowServer,
                                  src_client: TrackingClient, dst_client: TrackingClient, unique: str) -> None:
    done = cli("copy-run", "--run-id", seeded.big, "--src-mlflow-uri", mlflow_src.uri, "--dst-mlflow-uri",
               mlflow_dst.uri, "--dst-experiment-name", f"copy-{unique}")
    assert done.returncode == 0, done.stderr
    exp = dst_client.get_experiment_by_name(f"copy-{unique}")
    assert exp is not None
    [(src_id, dst_id)] = by_source(dst_client, exp["experiment_id"]).items()
    assert src_id == seeded.big
    assert run_view(dst_client, dst_id) == run_view(src_client, seeded.big)
