"""Scenarios 1, 2 and 7: an MlflowExport and an MlflowImport chained by exportRef, applied together,
against two real MLflow servers; progress seen moving; no secret value anywhere it must not be."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from mlflow import MlflowClient

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def seed(uri: str, unique: str) -> tuple[str, str]:
    client = MlflowClient(uri)
    experiment = f"e2e-exp-{unique}"
    exp_id = client.create_experiment(experiment)
    for i in range(3):
        run = client.create_run(exp_id, run_name=f"run-{i}")
        client.log_param(run.info.run_id, "alpha", str(i))
        for step in range(3):
            client.log_metric(run.info.run_id, "loss", 1.0 / (step + 1 + i), step=step)
        client.set_terminated(run.info.run_id)
    model = f"e2e-model-{unique}"
    client.create_registered_model(model)
    client.create_model_version(model, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    return experiment, model


def test_export_then_chained_import(operator, res, k8s_cluster, mlflow_src, mlflow_dst, unique) -> None:
    experiment, model = seed(mlflow_src.uri, unique)
    token = f"tok-{unique}-secret"
    res.secret("mlflow-creds", {"MLFLOW_TRACKING_TOKEN": token})
    res.claim("backups")
    progress: list[int] = []
    stop = threading.Event()

    def watch_progress() -> None:
        while not stop.is_set():
            done = (res.status("MlflowExport", "backup").get("progress") or {}).get("done")
            if done is not None and (not progress or progress[-1] != done):
                progress.append(done)
            stop.wait(0.05)

    res.create("MlflowImport", "restore", {
        "destination": {"trackingUri": mlflow_dst.uri, "credentialsSecret": {"name": "mlflow-creds"}},
        "source": {"exportRef": {"name": "backup"}},
    })  # fmt: skip
    waiting = res.wait_phase("MlflowImport", "restore", {"Pending"}, timeout=30)
    assert {c["type"]: c for c in waiting["conditions"]}["Succeeded"]["reason"] == "WaitingForExport"
    watcher = threading.Thread(target=watch_progress, daemon=True)
    res.create("MlflowExport", "backup", {
        "source": {"trackingUri": mlflow_src.uri, "credentialsSecret": {"name": "mlflow-creds"}},
        "objects": {"experiments": [experiment], "models": [model]},
        "destination": {"pvc": {"claimName": "backups", "subPath": "nightly"}},
        "job": {"env": [{"name": "FERRY_PROGRESS_INTERVAL", "value": "0"}]},
    })  # fmt: skip
    watcher.start()
    exported = res.wait_phase("MlflowExport", "backup", {"Succeeded", "PartiallyFailed", "Failed"}, timeout=180)
    stop.set()
    watcher.join()
    assert exported["phase"] == "Succeeded", exported
    # 3 runs of the experiment, plus the model version's run, which the model's export carries too
    assert exported["counts"]["experiments"] == 1 and exported["counts"]["runs"] == 4
    assert exported["counts"]["models"] == 1 and exported["counts"]["versions"] == 1
    assert (exported["path"], exported["claimName"]) == ("nightly", "backups")
    assert exported["progress"]["total"] > 0 and exported["progress"]["summary"].endswith(f"/{exported['progress']['total']}")
    assert len(progress) >= 2 and progress == sorted(progress), progress
    files = {p.name for p in Path(k8s_cluster.claim_path(res.namespace, "backups"), "nightly").rglob("*")}
    assert {"experiments.json", "run.json"} <= files, files
    jobs = res.jobs("backup")
    assert len(jobs) == 1 and jobs[0].metadata.owner_references[0].name == "backup"

    imported = res.wait_phase("MlflowImport", "restore", {"Succeeded", "PartiallyFailed", "Failed"}, timeout=180)
    assert imported["phase"] == "Succeeded", imported
    assert imported["sourcePath"] == "nightly"
    src, dst = MlflowClient(mlflow_src.uri), MlflowClient(mlflow_dst.uri)
    src_runs = {r.info.run_name: r for r in src.search_runs([src.get_experiment_by_name(experiment).experiment_id])}
    dst_exp = dst.get_experiment_by_name(experiment)
    assert dst_exp is not None
    dst_runs = {r.info.run_name: r for r in dst.search_runs([dst_exp.experiment_id])}
    assert set(dst_runs) == set(src_runs)
    for name, run in src_runs.items():
        assert dst_runs[name].data.params == run.data.params
        assert dst_runs[name].data.metrics == run.data.metrics
        assert dst_runs[name].info.start_time == run.info.start_time
        history = [(m.step, m.value) for m in dst.get_metric_history(dst_runs[name].info.run_id, "loss")]
        assert history == [(m.step, m.value) for m in src.get_metric_history(run.info.run_id, "loss")]
    assert [v.version for v in dst.search_model_versions(f"name='{model}'")] == ["1"]
    for reason in ("JobCreated", "Running", "Succeeded"):
        res.wait_event("backup", reason)

    # Scenario 7: the token is nowhere but in its Secret.
    seen = [str(res.get("MlflowExport", "backup")), str(res.get("MlflowImport", "restore")), operator.log()]
    seen += [str(e.message) for e in res.core.list_namespaced_event(res.namespace).items]
    seen += [str(j.to_dict()) for j in res.jobs()]
    assert not [text[:200] for text in seen if token in text]
    env_from = jobs[0].spec.template.spec.containers[0].env_from
    assert env_from[0].secret_ref.name == "mlflow-creds"
