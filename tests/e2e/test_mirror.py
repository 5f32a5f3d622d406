"""An MlflowMirror on the real control plane: a standby kept in step sync after sync, a killed sync made good.

The operator runs one Job per scheduled time (a seconds schedule here); the first sync's pod is
deleted half-way, the next sync finishes the work with nothing lost or doubled, and changes made
on the source afterwards (new steps of a running run, its end, a new run, a new version and a
moved alias) reach the standby with the sync after them. Status is read as `kubectl get` shows it.
"""

from __future__ import annotations

import os
import time

import mlflow
import pytest
from mlflow import MlflowClient

from devstack.cluster.pytest_plugin import wait_for
from devstack.compare import differences, snapshot
from devstack.fluent import point_fluent_api_at
from ferry.engine.runs import SOURCE_RUN_ID_TAG

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
RUNS = 24
PAYLOAD = os.urandom(256 * 1024)  # per run: a sync takes long enough to be cut short


def _in_step(src_uri: str, dst_uri: str, experiment: str, model: str) -> list[str]:
    return differences(snapshot(src_uri, [experiment], [model]), snapshot(dst_uri, [experiment], [model]))


def _finished_sync(res, name: str, after: str | None):
    """The status once a sync later than Job `after` has finished without failing."""
    def done():
        status = res.status("MlflowMirror", name)
        last = status.get("lastResult") or {}
        return status if last.get("jobName") not in (None, after) and last.get("phase") == "Succeeded" else None

    return wait_for(done, 180, "a sync to succeed")


def test_mirror_keeps_the_standby_in_step(operator, res, mlflow_src, mlflow_dst, unique, tmp_path) -> None:
    experiment, model = f"mirror-e2e-{unique}", f"mirror-e2e-model-{unique}"
    point_fluent_api_at(mlflow_src.uri)
    mlflow.set_experiment(experiment)
    blob = tmp_path / "weights.bin"
    blob.write_bytes(PAYLOAD)
    seeded = []
    for n in range(RUNS):
        with mlflow.start_run(run_name=f"run-{n}") as run:
            mlflow.log_metrics({"loss": 1 / (n + 1), "acc": n / RUNS})
            mlflow.log_artifact(str(blob), "model")
        seeded.append(run)
    first_run = seeded[0]
    client = MlflowClient(mlflow_src.uri)
    client.create_registered_model(model)
    client.create_model_version(model, f"{first_run.info.artifact_uri}/model", first_run.info.run_id)
    client.set_registered_model_alias(model, "champion", "1")
    running = client.create_run(client.get_experiment_by_name(experiment).experiment_id, run_name="training")
    for step in range(3):
        client.log_metric(running.info.run_id, "loss", 3.0 - step, step=step)

    res.create("MlflowMirror", "standby", {
        "source": {"trackingUri": mlflow_src.uri},
        "destination": {"trackingUri": mlflow_dst.uri},
        "objects": {"experiments": [experiment], "models": [model], "prompts": []},
        "schedule": "* * * * * */5",
        "successfulJobsHistoryLimit": 1,
        "job": {"backoffLimit": 0},
    })  # fmt: skip

    # The first sync, cut short: its pod is deleted once it has copied a few runs.
    first = wait_for(lambda: (s := res.status("MlflowMirror", "standby")).get("progress", {}).get("done", 0) >= 3
                     and s, 180, "the first sync to copy 3 runs")
    pods = res.core.list_namespaced_pod(res.namespace, label_selector=f"job-name={first['jobName']}").items
    assert pods  # a pod was running the sync
    for pod in pods:
        res.core.delete_namespaced_pod(pod.metadata.name, res.namespace, grace_period_seconds=0)
    # The Job starts a new pod (a deleted pod is not a failed one) or fails; either way a later sync
    # finishes the work from the same watermark.
    synced = _finished_sync(res, "standby", None)
    assert synced["lagSeconds"] == 0  # phase: the next run's already, on a 5-second schedule
    assert synced["lastSyncTime"] and synced["watermark"] and synced["lastFullCompareTime"]
    assert _in_step(mlflow_src.uri, mlflow_dst.uri, experiment, model) == []
    dst = MlflowClient(mlflow_dst.uri)
    dst_exp = dst.get_experiment_by_name(experiment).experiment_id
    copies = dst.search_runs([dst_exp], max_results=1000)  # active: a half copy the next sync replaced is deleted
    assert len(copies) == RUNS + 1
    assert len({c.data.tags[SOURCE_RUN_ID_TAG] for c in copies}) == RUNS + 1  # nothing doubled

    # Changes on the source reach the standby with the next sync.
    for step in range(3, 8):
        client.log_metric(running.info.run_id, "loss", 3.0 - step, step=step)
    client.set_terminated(running.info.run_id, "FINISHED")
    with mlflow.start_run(run_name="retrained") as new:
        mlflow.log_metric("loss", 0.01)
        mlflow.log_artifact(str(blob), "model")
    client.create_model_version(model, f"{new.info.artifact_uri}/model", new.info.run_id)
    client.set_registered_model_alias(model, "champion", "2")
    changed_at = int(time.time() * 1000)
    later = _finished_sync(res, "standby", synced["lastResult"]["jobName"])
    while later["watermark"] <= changed_at:  # a sync that began before the changes carries them maybe
        later = _finished_sync(res, "standby", later["lastResult"]["jobName"])
    assert _in_step(mlflow_src.uri, mlflow_dst.uri, experiment, model) == []
    assert later["lagSeconds"] == 0 and later["watermark"] > synced["watermark"]
    assert "lastFullCompareTime" in later and later["lastFullCompareTime"] == synced["lastFullCompareTime"]
    res.wait_event("standby", "Succeeded")
