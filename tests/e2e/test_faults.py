"""Faults in the middle of the work: a tracking server, the operator or the kube-apiserver killed
and restarted while a Job runs. Each scenario asserts that nothing was lost and nothing carried
twice (the destination equals the source field by field, `devstack.compare`, plus every artifact
file and its size) and prints one line: faults injected, objects lost, objects duplicated.

The moment of each fault is chosen from progress (runs visible at the destination, run
directories written, ``status.progress``), never from a sleep. The Jobs run one worker and retry
a request once, so that a killed server fails the pod quickly and `spec.job.backoffLimit` is what
brings the work to its end.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from kubernetes import client
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from devstack.cluster.pytest_plugin import wait_for
from devstack.compare import differences, snapshot
from devstack.mlflow_server import MlflowServer
from ferry.api.resources import MLFLOW_MIRROR
from ferry.engine.service import export_objects, import_objects
from ferry.options import ExportOptions, ImportOptions, Selection
from tests.e2e.conftest import ROOT, Operator, Resources

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

RUNS = 20
DONE = {"Succeeded", "PartiallyFailed", "Failed"}
# One run at a time, a failed request retried once: a dead server fails the pod within seconds.
FRAGILE_JOB = [{"name": "FERRY_WORKERS", "value": "1"}, {"name": "FERRY_HTTP_MAX_ATTEMPTS", "value": "2"},
               {"name": "FERRY_PROGRESS_INTERVAL", "value": "0"}]


@pytest.fixture
def server(tmp_path: Path):
    """Factory of tracking servers of this test's own, which it may kill."""
    started: list[MlflowServer] = []

    def make(name: str) -> MlflowServer:
        started.append(MlflowServer(root=tmp_path / name).start(timeout=300))
        return started[-1]

    yield make
    for one in started:
        one.stop()


def seed(uri: str, unique: str, runs: int = RUNS) -> tuple[str, str]:
    """An experiment of `runs` runs (params, a 5-step metric, two artifact files), a model of 2 versions."""
    client = MlflowClient(uri)
    experiment, model = f"faults-{unique}", f"faults-model-{unique}"
    exp_id = client.create_experiment(experiment, tags={"team": "faults"})
    ids = []
    for i in range(runs):
        run_id = client.create_run(exp_id, run_name=f"run-{i:02d}", tags={"i": str(i)}).info.run_id
        client.log_batch(run_id, params=[Param("alpha", str(i))],
                         metrics=[Metric("loss", 1.0 / (step + 1 + i), 1_700_000_000_000 + step, step)
                                  for step in range(5)])
        client.log_text(run_id, f"notes of run {i}\n" * 50, "notes.txt")
        client.log_dict(run_id, {"i": i, "weights": list(range(200))}, "model/weights.json")
        client.set_terminated(run_id)
        ids.append(run_id)
    client.create_registered_model(model, description="a model of the fault tests")
    for run_id in (ids[3], ids[-1]):
        client.create_model_version(model, source=f"runs:/{run_id}/model", run_id=run_id, description=f"from {run_id}")
    return experiment, model


def artifacts(client: MlflowClient, experiment: str) -> dict[str, list[tuple[str, int | None]]]:
    """Every artifact file of every active run, with its size, by run name."""
    exp = client.get_experiment_by_name(experiment)
    out: dict[str, list[tuple[str, int | None]]] = {}

    def walk(run_id: str, path: str | None) -> list[tuple[str, int | None]]:
        files = []
        for info in client.list_artifacts(run_id, path):
            files += walk(run_id, info.path) if info.is_dir else [(info.path, info.file_size)]
        return files

    for run in client.search_runs([exp.experiment_id], max_results=1000) if exp else []:
        out.setdefault(run.info.run_name, []).extend(walk(run.info.run_id, None))
    return {name: sorted(files) for name, files in out.items()}


def carried(src_uri: str, dst_uri: str, experiment: str, model: str | None = None) -> tuple[int, int, list[str]]:
    """(objects lost, objects duplicated, field differences) between source and destination.

    Objects are runs, metric points, artifact files and model versions. Runs are compared by name,
    so a run imported twice shows as a name with two active runs, which the snapshot (keyed by
    name) would hide: the runs are counted separately.
    """
    models = [model] if model else []
    src, dst = snapshot(src_uri, [experiment], models), snapshot(dst_uri, [experiment], models)
    src_client, dst_client = MlflowClient(src_uri), MlflowClient(dst_uri)
    lost = duplicated = 0
    src_runs, dst_runs = Counter(_run_names(src_client, experiment)), Counter(_run_names(dst_client, experiment))
    lost += sum((src_runs - dst_runs).values())
    duplicated += sum((dst_runs - src_runs).values())
    src_exp, dst_exp = src["experiments"][experiment] or {"runs": {}}, dst["experiments"][experiment] or {"runs": {}}
    for name, run in src_exp["runs"].items():
        theirs = dst_exp["runs"].get(name, {"metrics": {}})
        for key, points in run["metrics"].items():
            mine, copied = Counter(points), Counter(theirs["metrics"].get(key, []))
            lost += sum((mine - copied).values())
            duplicated += sum((copied - mine).values())
    src_files, dst_files = artifacts(src_client, experiment), artifacts(dst_client, experiment)
    for name in src_files.keys() | dst_files.keys():
        mine, copied = Counter(src_files.get(name, [])), Counter(dst_files.get(name, []))
        lost += sum((mine - copied).values())
        duplicated += sum((copied - mine).values())
    src_versions = len((src["models"].get(model) or {"versions": []})["versions"])
    dst_versions = len((dst["models"].get(model) or {"versions": []})["versions"])
    lost += max(0, src_versions - dst_versions)
    duplicated += max(0, dst_versions - src_versions)
    diffs = differences(src, dst)
    if src_files != dst_files:
        diffs.append(f"/artifacts: {src_files} != {dst_files}")
    return lost, duplicated, diffs


def _run_names(client: MlflowClient, experiment: str) -> list[str]:
    exp = client.get_experiment_by_name(experiment)
    return [r.info.run_name for r in client.search_runs([exp.experiment_id], max_results=1000)] if exp else []


def report(scenario: str, faults: int, lost: int, duplicated: int, diffs: list[str]) -> None:
    print(f"fault scenario {scenario}: faults injected {faults}, objects lost {lost}, objects duplicated {duplicated}")
    assert faults >= 1
    assert (lost, duplicated) == (0, 0), diffs[:10]
    assert diffs == [], diffs[:10]


def visible_runs(uri: str, experiment: str) -> int:
    """Active runs of `experiment` on the server, straight over REST (no client retries): -1 if unreachable."""
    try:
        got = requests.get(f"{uri}/api/2.0/mlflow/experiments/get-by-name", timeout=2,
                           params={"experiment_name": experiment})
        if got.status_code != 200:
            return 0
        exp_id = got.json()["experiment"]["experiment_id"]
        found = requests.post(f"{uri}/api/2.0/mlflow/runs/search", timeout=2,
                              json={"experiment_ids": [exp_id], "max_results": 1000})
        return len(found.json().get("runs", []))
    except (requests.RequestException, ValueError, KeyError):
        return -1


class Laps:
    """Seconds since the scenario began, printed at each step: where a slow scenario spends its time."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self, what: str) -> None:
        print(f"  +{time.monotonic() - self.start:6.1f} s  {what}")


def sigkill(operator: Operator) -> None:
    """SIGKILL the operator: no shutdown, no last status patch."""
    assert operator.proc is not None
    os.killpg(operator.proc.pid, signal.SIGKILL)
    operator.stop()  # reaps it


def job_failures(res: Resources, name: str) -> int:
    return sum(job.status.failed or 0 for job in res.jobs(name))


def wait_pod_failed_or_done(res: Resources, kind: str, name: str) -> None:
    wait_for(lambda: job_failures(res, name) >= 1 or res.status(kind, name).get("phase") in DONE,
             120, f"the pod of {name} to fail")


def claim_dir(k8s_cluster: Any, res: Resources, claim: str, sub_path: str) -> Path:
    """The host directory behind `sub_path` of a claim (the local kubelet's bind mount)."""
    return Path(k8s_cluster.claim_path(res.namespace, claim), sub_path)


def test_destination_killed_mid_import(operator, res, k8s_cluster, mlflow_src, server, unique) -> None:
    """Scenario 1: the destination server is SIGKILLed while the import Job runs and restarted on the
    same port with the same sqlite file; the Job's retry finishes the import."""
    lap = Laps()
    dst = server("dst")
    experiment, model = seed(mlflow_src.uri, unique)
    lap("destination started, source seeded")
    res.claim("backups")
    out = claim_dir(k8s_cluster, res, "backups", "exported")
    exported = export_objects(mlflow_src.uri, out, Selection(experiments=[experiment], models=[model]), ExportOptions())
    assert exported.phase == "Succeeded", exported
    lap("exported")
    res.create("MlflowImport", "restore", {
        "destination": {"trackingUri": dst.uri},
        "source": {"pvc": {"claimName": "backups", "subPath": "exported"}},
        "job": {"backoffLimit": 6, "env": FRAGILE_JOB},
    })  # fmt: skip
    at_kill = wait_for(lambda: (n := visible_runs(dst.uri, experiment)) >= 4 and n, 120, "4 runs imported")
    dst.kill()
    lap(f"destination killed with {at_kill} runs imported")
    assert at_kill < RUNS, "the import finished before the kill"
    wait_pod_failed_or_done(res, "MlflowImport", "restore")
    lap("pod failed")
    dst.restart(timeout=300)
    lap("destination restarted")
    status = res.wait_phase("MlflowImport", "restore", DONE, timeout=180)
    lap(f"import {status['phase']}")
    assert status["phase"] == "Succeeded", status
    assert job_failures(res, "restore") >= 1, "the kill did not fail a pod: the retry was not exercised"
    assert status["counts"]["runs"] >= RUNS and status["counts"]["versions"] == 2, status["counts"]
    report("destination killed mid-import", 1, *carried(mlflow_src.uri, dst.uri, experiment, model))


def test_source_killed_mid_export(operator, res, k8s_cluster, mlflow_dst, server, unique) -> None:
    """Scenario 2: the source server is SIGKILLed while the export Job writes run directories and
    restarted; the retried pod keeps the runs already written (their run.json is the completion
    marker) and the export then imports equal to the source."""
    lap = Laps()
    src = server("src")
    experiment, model = seed(src.uri, unique)
    lap("source started and seeded")
    exp_id = MlflowClient(src.uri).get_experiment_by_name(experiment).experiment_id
    res.claim("backups")
    runs_dir = claim_dir(k8s_cluster, res, "backups", "nightly") / exp_id / "runs"
    res.create("MlflowExport", "backup", {
        "source": {"trackingUri": src.uri},
        "objects": {"experiments": [experiment], "models": [model]},
        "destination": {"pvc": {"claimName": "backups", "subPath": "nightly"}},
        "job": {"backoffLimit": 6, "env": FRAGILE_JOB},
    })  # fmt: skip

    def markers() -> dict[str, int]:
        return {p.parent.name: p.stat().st_mtime_ns for p in runs_dir.glob("*/run.json")}

    wait_for(lambda: len(markers()) >= 4, 120, "4 runs exported")
    src.kill()
    before = markers()
    lap(f"source killed with {len(before)} runs exported")
    assert len(before) < RUNS, "the export finished before the kill"
    wait_pod_failed_or_done(res, "MlflowExport", "backup")
    lap("pod failed")
    src.restart(timeout=300)
    lap("source restarted")
    status = res.wait_phase("MlflowExport", "backup", DONE, timeout=180)
    lap(f"export {status['phase']}")
    assert status["phase"] == "Succeeded", status
    assert job_failures(res, "backup") >= 1, "the kill did not fail a pod: the retry was not exercised"
    after = markers()
    assert len(after) == RUNS
    assert {run: after[run] for run in before} == before, "runs finished before the kill were exported again"
    imported = import_objects(mlflow_dst.uri, runs_dir.parents[1], ImportOptions())
    assert imported.phase == "Succeeded", imported
    report("source killed mid-export", 1, *carried(src.uri, mlflow_dst.uri, experiment, model))


def results(res: Resources, name: str) -> Counter[str]:
    """How often each Job's result was reported: Events Succeeded/PartiallyFailed/Failed by Job."""
    told: Counter[str] = Counter()
    for event in res.events(name):
        if event.reason in DONE and (event.message or "").startswith("Job "):
            told[event.message.split()[1].rstrip(":")] += event.count or 1
    return told


def small_experiment(uri: str, unique: str, runs: int) -> str:
    client = MlflowClient(uri)
    experiment = f"faults-small-{unique}"
    exp_id = client.create_experiment(experiment)
    for i in range(runs):
        run_id = client.create_run(exp_id, run_name=f"run-{i:02d}").info.run_id
        client.log_text(run_id, f"file of run {i}\n" * 200, "file.txt")
        client.set_terminated(run_id)
    return experiment


def test_operator_killed_while_a_job_runs(operator, res, mlflow_src, unique) -> None:
    """Scenario 3: the operator SIGKILLed while a one-shot export's Job runs, and kept away until the
    Job is done. After the restart the status converges, no Job is created twice and the result is
    told once."""
    lap = Laps()
    experiment = small_experiment(mlflow_src.uri, unique, 20)
    res.claim("backups")
    lap("seeded")
    res.create("MlflowExport", "survivor", {
        "source": {"trackingUri": mlflow_src.uri}, "objects": {"experiments": [experiment]},
        "destination": {"pvc": {"claimName": "backups", "subPath": "once"}},
        "job": {"env": FRAGILE_JOB},
    })  # fmt: skip
    wait_for(lambda: (s := res.status("MlflowExport", "survivor")).get("phase") == "Running"
             and (s.get("progress") or {}).get("done", 0) >= 3, 120, "the export running with progress")
    sigkill(operator)
    lap("operator killed while the Job runs")
    (job,) = res.jobs("survivor")
    wait_for(lambda: (j := res.batch.read_namespaced_job(job.metadata.name, res.namespace)).status.succeeded
             or j.status.failed, 180, "the Job to finish while the operator is away")
    assert res.status("MlflowExport", "survivor")["phase"] == "Running"  # nobody recorded it yet
    operator.start()
    status = res.wait_phase("MlflowExport", "survivor", DONE, timeout=120)
    lap(f"restarted; export {status['phase']}")
    assert status["phase"] == "Succeeded" and status["counts"]["runs"] == 20, status
    assert [j.metadata.name for j in res.jobs("survivor")] == [job.metadata.name]
    wait_for(lambda: results(res, "survivor"), 30, "the result Event")
    assert results(res, "survivor") == {job.metadata.name: 1}
    report("operator killed during a Job", 1, 0, sum(n - 1 for n in results(res, "survivor").values()), [])


class StatusWrites:
    """The operator's right to patch MlflowExport statuses, taken away and given back through its Role.

    With it taken, a schedule tick creates its run's Job and is refused the status patch that
    follows: the operator is then exactly between the two writes of a tick, where a crash leaves a
    Job the status does not know.
    """

    RESOURCE = "mlflowexports/status"

    def __init__(self, res: Resources, operator: Operator) -> None:
        self.rbac = client.RbacAuthorizationV1Api(res.custom.api_client)
        self.authz = client.AuthorizationV1Api(res.custom.api_client)
        self.res, self.operator = res, operator
        self.taken_at: datetime | None = None

    def allowed(self) -> bool:
        review = self.authz.create_subject_access_review({"spec": {
            "user": f"system:serviceaccount:{self.res.namespace}:ferry-operator",
            "resourceAttributes": {"namespace": self.res.namespace, "verb": "patch", "group": "ferry.dev",
                                   "resource": "mlflowexports", "subresource": "status"},
        }})  # fmt: skip
        return bool(review.status.allowed)

    def _set(self, allowed: bool) -> None:
        role = self.rbac.read_namespaced_role("ferry-operator", self.res.namespace)
        statuses = next(rule for rule in role.rules if "kiroframesyncs/status" in (rule.resources or []))
        kept = [name for name in statuses.resources if name != self.RESOURCE]
        statuses.resources = [*kept, self.RESOURCE] if allowed else kept
        self.rbac.replace_namespaced_role("ferry-operator", self.res.namespace, role)
        wait_for(lambda: self.allowed() == allowed, 30, f"the operator {'allowed' if allowed else 'refused'} "
                 f"to patch {self.RESOURCE}")

    def take(self) -> None:
        self.taken_at = datetime.now()  # the operator's log times are local
        self._set(False)

    def give_back(self) -> None:
        self._set(True)
        assert self.taken_at is not None
        self.operator.refusals_expected(self.taken_at, datetime.now())


@pytest.mark.parametrize("side", ["before", "after"])
def test_operator_killed_on_either_side_of_a_ticks_status_write(side, operator, res, mlflow_src, unique) -> None:
    """Scenario 3b: a schedule tick creates a run's Job, then writes lastScheduleTime and active; the
    operator is SIGKILLed on purpose before that write (it was refused) or after it. The schedule is
    suspended while the operator is away, so only the Job can tell the restarted operator that the
    run happened: lastScheduleTime is the run's time either way, the run is recorded once and not
    active, and no scheduled time gets a second Job."""
    lap = Laps()
    experiment = small_experiment(mlflow_src.uri, unique, 3)
    res.claim("backups")
    writes = StatusWrites(res, operator)
    if side == "before":
        writes.take()
    res.create("MlflowExport", "ticking", {
        "schedule": "* * * * * */10", "concurrencyPolicy": "Forbid",
        "source": {"trackingUri": mlflow_src.uri}, "objects": {"experiments": [experiment]},
        "destination": {"pvc": {"claimName": "backups", "subPath": "scheduled"}},
        "job": {"env": FRAGILE_JOB},
    })  # fmt: skip
    (first,) = wait_for(lambda: res.jobs("ticking"), 60, "the first scheduled Job")
    due = first.metadata.annotations["ferry.dev/scheduled-time"]
    if side == "after":
        wait_for(lambda: res.status("MlflowExport", "ticking").get("lastScheduleTime") == due, 30,
                 "the tick's status write")
    sigkill(operator)
    lap(f"operator killed {side} the tick's status write")
    if side == "before":
        writes.give_back()
        assert "lastScheduleTime" not in res.status("MlflowExport", "ticking")
    res.patch("MlflowExport", "ticking", {"spec": {"suspend": True}})
    (left,) = res.jobs("ticking")
    assert left.metadata.name == first.metadata.name  # the killed operator started nothing else
    wait_for(lambda: res.batch.read_namespaced_job(first.metadata.name, res.namespace).status.succeeded,
             180, "the scheduled Job to finish while the operator is away")
    operator.start()
    final = wait_for(lambda: (s := res.status("MlflowExport", "ticking")).get("lastResult", {}).get("jobName")
                     and s, 120, "the run's result recorded")
    wait_for(lambda: results(res, "ticking"), 30, "the result Event")
    lap("restarted; the run recorded")
    final = res.status("MlflowExport", "ticking")
    assert final["lastScheduleTime"] == due, final
    assert final["lastResult"]["jobName"] == first.metadata.name and final["lastResult"]["scheduledTime"] == due
    assert final["phase"] == final["lastResult"]["phase"] == "Succeeded", final
    assert not final.get("active"), final  # nothing finished is still listed as running
    assert [j.metadata.name for j in res.jobs("ticking")] == [first.metadata.name]
    assert results(res, "ticking") == {first.metadata.name: 1}
    report(f"operator killed {side} a tick's status write", 1, 0, 0, [])


def test_apiserver_restarted_while_a_job_reports_progress(operator, res, k8s_cluster, mlflow_src, mlflow_dst,
                                                          unique) -> None:
    """Scenario 4: the kube-apiserver SIGKILLed and restarted on its port while the operator follows
    an export whose Job patches status.progress; the status converges, one Job, one result."""
    lap = Laps()
    experiment = small_experiment(mlflow_src.uri, unique, 30)
    res.claim("backups")
    res.create("MlflowExport", "steady", {
        "source": {"trackingUri": mlflow_src.uri}, "objects": {"experiments": [experiment]},
        "destination": {"pvc": {"claimName": "backups", "subPath": "steady"}},
        "job": {"env": [{"name": "FERRY_WORKERS", "value": "1"}, {"name": "FERRY_PROGRESS_INTERVAL", "value": "0"}]},
    })  # fmt: skip
    at_restart = wait_for(lambda: (s := res.status("MlflowExport", "steady")).get("phase") == "Running"
                          and (s.get("progress") or {}).get("done", 0) >= 3 and s["progress"]["done"], 120,
                          "the export running with progress")
    operator.apiserver_restarted(datetime.now())  # the operator's log times are local
    k8s_cluster.restart_apiserver()
    lap(f"kube-apiserver restarted at progress {at_restart}")
    status = res.wait_phase("MlflowExport", "steady", DONE, timeout=180)
    lap(f"export {status['phase']}")
    assert at_restart < 30
    assert status["phase"] == "Succeeded" and status["counts"]["runs"] == 30, status
    (job,) = res.jobs("steady")
    assert status["progress"]["done"] == status["progress"]["total"] == 30, status["progress"]
    wait_for(lambda: results(res, "steady"), 30, "the result Event")
    assert results(res, "steady") == {job.metadata.name: 1}
    assert operator.running
    out = Path(k8s_cluster.claim_path(res.namespace, "backups"), "steady")
    imported = import_objects(mlflow_dst.uri, out, ImportOptions())
    assert imported.phase == "Succeeded", imported
    report("kube-apiserver restarted mid-Job", 1, *carried(mlflow_src.uri, mlflow_dst.uri, experiment))


def test_a_crd_missing_while_a_job_runs(operator, res, k8s_api, mlflow_src, unique) -> None:
    """Scenario 5: the MlflowMirror CRD deleted while an export's Job runs, and created again after
    the Job ended: what the operator sees of an upgrade that re-creates the CRDs and, for a few
    seconds, of a restarted kube-apiserver that has not loaded them yet (404 for a custom resource,
    which kopf does not retry). The operator never exits: it starts again after the 404 (one
    ERROR line, counted in ferry_watch_restarts_total), names the CRD it misses, watches the other
    kinds, and starts again once the CRD is back, watching all; the export's result is written once."""
    lap = Laps()
    ext = client.ApiextensionsV1Api(k8s_api)
    crd = yaml.safe_load((ROOT / "crds" / f"{MLFLOW_MIRROR.crd_name}.yaml").read_text())
    experiment = small_experiment(mlflow_src.uri, unique, 10)
    res.claim("backups")
    res.create("MlflowExport", "unwatched", {
        "source": {"trackingUri": mlflow_src.uri}, "objects": {"experiments": [experiment]},
        "destination": {"pvc": {"claimName": "backups", "subPath": "unwatched"}},
        "job": {"env": [{"name": "FERRY_WORKERS", "value": "1"}]},
    })  # fmt: skip
    wait_for(lambda: res.status("MlflowExport", "unwatched").get("phase") == "Running", 120, "the export running")
    ext.delete_custom_resource_definition(MLFLOW_MIRROR.crd_name)
    wait_for(lambda: MLFLOW_MIRROR.crd_name not in {c.metadata.name for c in ext.list_custom_resource_definition().items},
             60, "the CRD gone")
    lap("MlflowMirror CRD deleted")
    wait_for(lambda: watch_restarts(operator) >= 1, 60, "the operator watching again after a 404")
    wait_for(lambda: f"does not serve {MLFLOW_MIRROR.crd_name}" in operator.log(), 60, "the operator naming the CRD")
    wait_for(lambda: all(j.status.succeeded or j.status.failed for j in res.jobs("unwatched")), 120, "the Job to end")
    lap(f"Job ended; the operator watched again {watch_restarts(operator):.0f} times")
    assert operator.running
    ext.create_custom_resource_definition(crd)
    wait_for(lambda: any(c.type == "Established" and c.status == "True"
                         for c in ext.read_custom_resource_definition(MLFLOW_MIRROR.crd_name).status.conditions or []),
             30, "the CRD established again")
    wait_for(lambda: "now serves" in operator.log(), 60, "the operator watching the CRD's kind again")
    status = res.wait_phase("MlflowExport", "unwatched", DONE, timeout=120)
    lap(f"export {status['phase']}")
    assert status["phase"] == "Succeeded" and status["counts"]["runs"] == 10, status
    (job,) = res.jobs("unwatched")
    wait_for(lambda: results(res, "unwatched"), 30, "the result Event")
    assert results(res, "unwatched") == {job.metadata.name: 1}
    assert operator.running
    log = operator.log().splitlines()
    lost = [line for line in log if "stopped serving the operator's watches" in line]
    assert lost and all("APINotFoundError: 404 page not found" in line for line in lost), lost[:3]
    served = [line for line in log if f"starting the watches again: the API server now serves {MLFLOW_MIRROR.crd_name}" in line]
    assert len(served) == 1, served
    lines = lost + served
    assert len(lines) == wait_for(lambda: max(0, watch_restarts(operator)), 30, "the metrics served")
    report("a CRD missing while a Job ran", len(lines), 0, 0, [])


def watch_restarts(operator: Operator) -> float:
    """ferry_watch_restarts_total, as the operator's /metrics serves it; -1 between two of its runs."""
    try:
        text = requests.get(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5).text
    except requests.ConnectionError:
        return -1
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith("ferry_watch_restarts_total"))
