"""Seed a source server with the real MLflow client: every kind of run data the engine carries.

Used by the run/experiment tests and by the model tests (which register versions on top of
`Seeded.parent`). Times are fixed values so that source and destination can be compared exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag

T0 = 1_700_000_000_000  # ms; every seeded time is T0 + an offset


@dataclass
class Seeded:
    uri: str
    experiment_id: str
    experiment_name: str
    parent: str
    child: str
    big: str
    failed: str
    deleted: str
    active_runs: list[str] = field(default_factory=list)

    @property
    def all_runs(self) -> list[str]:
        return [*self.active_runs, self.deleted]


def mlmodel_text(run_id: str) -> str:
    return f"artifact_path: model\nflavors:\n  python_function:\n    loader_module: mlflow.sklearn\nrun_id: {run_id}\n"


def make_run(client: MlflowClient, experiment_id: str, name: str, offset: int, *, status: str = "FINISHED",
             parent: str | None = None, tags: dict[str, str] | None = None) -> str:
    """A run with fixed start and end times, a name and optional parent."""
    all_tags = dict(tags or {})
    if parent:
        all_tags["mlflow.parentRunId"] = parent
    run = client.create_run(experiment_id, start_time=T0 + offset, run_name=name, tags=all_tags)
    run_id = run.info.run_id
    client.set_terminated(run_id, status=status, end_time=T0 + offset + 5_000)
    return run_id


def seed_experiment(uri: str, name: str, scratch: Path) -> Seeded:
    client = MlflowClient(tracking_uri=uri)
    exp_id = client.create_experiment(name, tags={"team": "ferry", "mlflow.note.content": "seeded experiment"})

    parent = make_run(client, exp_id, "parent", 0, tags={"kind": "parent"})
    client.log_batch(parent, params=[Param("alpha", "0.5"), Param("solver", "lbfgs")],
                     metrics=[Metric("acc", 0.5 + i / 10, T0 + 100 + i, i) for i in range(3)])
    dataset = Dataset(name="wine", digest="abc123", source_type="local", source='{"uri": "/data/wine.csv"}',
                      schema='{"mlflow_colspec": [{"type": "double", "name": "x"}]}', profile='{"num_rows": 10}')
    client.log_inputs(parent, datasets=[DatasetInput(dataset, [InputTag("mlflow.data.context", "training")])])
    files = scratch / "parent-artifacts"
    (files / "model").mkdir(parents=True)
    (files / "model" / "MLmodel").write_text(mlmodel_text(parent))
    (files / "model" / "model.pkl").write_bytes(bytes(range(256)) * 40)
    (files / "plots").mkdir()
    (files / "plots" / "roc.txt").write_text("roc\n")
    client.log_artifacts(parent, str(files))
    client.set_terminated(parent, status="FINISHED", end_time=T0 + 5_000)  # log_artifacts does not touch it

    child = make_run(client, exp_id, "child", 1_000, parent=parent)
    client.log_metric(child, "loss", 0.25, timestamp=T0 + 1_100, step=7)
    client.log_param(child, "depth", "3")

    big = make_run(client, exp_id, "big", 2_000)
    client.log_batch(
        big,
        params=[Param(f"p{i:03d}", f"value-{i}") for i in range(150)],
        tags=[RunTag(f"t{i:03d}", f"tag-{i}") for i in range(120)],
        metrics=[Metric("loss", 1.0 / (i + 1), T0 + 10_000 + 3 * i, i) for i in range(1_200)]
        + [Metric("lr", 0.1, T0 + 10_000 + i, i * 10) for i in range(5)],
    )

    failed = make_run(client, exp_id, "failed", 3_000, status="FAILED")
    client.log_param(failed, "broken", "yes")

    deleted = make_run(client, exp_id, "deleted", 4_000)
    client.log_param(deleted, "gone", "true")
    client.delete_run(deleted)

    return Seeded(uri=uri, experiment_id=exp_id, experiment_name=name, parent=parent, child=child, big=big,
                  failed=failed, deleted=deleted, active_runs=[parent, child, big, failed])


IMPORT_ADDED_TAGS = {"ferry.source.run_id", "ferry.source.uri", "ferry.import.complete", "mlflow.parentRunId",
                     "mlflow.user"}


def run_view(client: object, run_id: str) -> dict:
    """Everything of a run that import must carry, in comparable form (via ferry.tracking)."""
    from ferry.tracking import ArtifactStore, TrackingClient, tags_of

    assert isinstance(client, TrackingClient)
    run = client.get_run(run_id)
    info, data = run["info"], run["data"]
    keys = sorted({m["key"] for m in data.get("metrics", [])})
    store = ArtifactStore(client, info["artifact_uri"])
    return {
        "run_name": info.get("run_name"),
        "status": info["status"],
        "start_time": info.get("start_time"),
        "end_time": info.get("end_time"),
        "lifecycle_stage": info["lifecycle_stage"],
        "params": {p["key"]: p["value"] for p in data.get("params", [])},
        "tags": {k: v for k, v in tags_of(data).items() if k not in IMPORT_ADDED_TAGS},
        "metrics": {k: sorted((p["step"], p["timestamp"], p["value"]) for p in client.get_metric_history(run_id, k))
                    for k in keys},
        "datasets": sorted(
            (d["dataset"]["name"], d["dataset"]["digest"], d["dataset"].get("source"), d["dataset"].get("schema"),
             d["dataset"].get("profile"), tuple(sorted((t["key"], t["value"]) for t in d.get("tags", []))))
            for d in (run.get("inputs") or {}).get("dataset_inputs", [])),
        "artifacts": {f.path: store.read_bytes(f.path) for f in store.walk() if f.path.rsplit("/", 1)[-1] != "MLmodel"},
    }
