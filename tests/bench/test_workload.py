"""The workload generator seeds what it promises, the same way on every server.

Seeds the `tiny` workload (every kind of object, in seconds) into both session servers and
compares them run by run: the benchmarks rely on two seedings holding identical data.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from mlflow import MlflowClient

from devstack.mlflow_server import MlflowServer
from devstack.workload import T0, WORKLOADS, Seeded, run_offset, run_payload, seed

TINY = WORKLOADS["tiny"]


@pytest.fixture(scope="module")
def seeded(mlflow_src: MlflowServer, mlflow_dst: MlflowServer) -> dict[str, Seeded]:
    prefix = f"wl-{uuid.uuid4().hex[:8]}-"
    return {"src": seed(mlflow_src.uri, TINY, prefix=prefix), "dst": seed(mlflow_dst.uri, TINY, prefix=prefix)}


def _runs(uri: str, experiment_id: str) -> dict[str, Any]:
    client = MlflowClient(tracking_uri=uri)
    return {run.info.run_name: run for run in client.search_runs([experiment_id], max_results=1000)}


def test_every_run_carries_the_planned_data(seeded: dict[str, Seeded], mlflow_src: MlflowServer) -> None:
    result = seeded["src"]
    experiment_id = next(iter(result.experiments.values()))
    runs = _runs(mlflow_src.uri, experiment_id)
    assert len(runs) == TINY.runs == result.runs
    client = MlflowClient(tracking_uri=mlflow_src.uri)

    run = runs["run-0-00003"]
    metrics, params, tags = run_payload(TINY, 0, 3)
    assert run.data.params == {p["key"]: p["value"] for p in params}
    assert {k: v for k, v in run.data.tags.items() if k.startswith("tag_")} == {t["key"]: t["value"] for t in tags}
    assert run.info.start_time == T0 + run_offset(0, 3)
    assert run.info.status == "FAILED"  # the fourth status of the cycle
    history = sorted((m.step, m.value, m.timestamp) for m in client.get_metric_history(run.info.run_id, "metric_1"))
    assert history == sorted((m["step"], m["value"], m["timestamp"]) for m in metrics if m["key"] == "metric_1")

    parent = runs["run-0-00000"].info.run_id
    assert runs["run-0-00001"].data.tags["mlflow.parentRunId"] == parent
    assert runs["run-0-00002"].data.tags["mlflow.parentRunId"] == parent
    assert "mlflow.parentRunId" not in run.data.tags

    inputs = runs["run-0-00000"].inputs.dataset_inputs
    assert [(d.dataset.name, d.tags[0].value) for d in inputs] == [("dataset-0-0-train", "training")]
    files = {f.path for f in client.list_artifacts(parent, "model")}
    assert {"model/MLmodel", "model/model.pkl"} <= files


def test_models_get_versions_stages_and_aliases(seeded: dict[str, Seeded], mlflow_src: MlflowServer) -> None:
    client = MlflowClient(tracking_uri=mlflow_src.uri)
    (name, count), = seeded["src"].models.items()
    assert count == TINY.versions == 2
    model = client.get_registered_model(name)
    assert model.aliases == {"champion": "2", "challenger": "1"}
    stages = {v.version: v.current_stage for v in client.search_model_versions(f"name='{name}'")}
    assert stages == {"1": "Staging", "2": "Production"}
    version = client.get_model_version(name, "1")
    assert version.source.endswith("/model") and version.run_id


def test_two_seedings_hold_identical_data(seeded: dict[str, Seeded], mlflow_src: MlflowServer,
                                          mlflow_dst: MlflowServer) -> None:
    src = _runs(mlflow_src.uri, next(iter(seeded["src"].experiments.values())))
    dst = _runs(mlflow_dst.uri, next(iter(seeded["dst"].experiments.values())))
    assert src.keys() == dst.keys()
    for name, a in src.items():
        b = dst[name]
        assert (a.info.start_time, a.info.end_time, a.info.status) == (b.info.start_time, b.info.end_time, b.info.status)
        assert a.data.params == b.data.params
        assert a.data.metrics == b.data.metrics
        assert {k: v for k, v in a.data.tags.items() if k != "mlflow.parentRunId"} == \
            {k: v for k, v in b.data.tags.items() if k != "mlflow.parentRunId"}
        assert ("mlflow.parentRunId" in a.data.tags) == ("mlflow.parentRunId" in b.data.tags)
