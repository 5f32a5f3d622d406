"""Seed a real MLflow server with what a Kiroframe sync reads, through MLflow's own client.

Experiments with descriptions and owners; runs with params, tags, several steps of metric
history, dataset inputs in the training/eval/output contexts (and one run without any); a
failed run and one left RUNNING; a registered model with versions and an alias.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag


@dataclass
class Seeded:
    experiments: dict[str, str] = field(default_factory=dict)  # name -> id
    runs: dict[str, str] = field(default_factory=dict)  # run name -> run id
    models: list[str] = field(default_factory=list)


def _dataset_input(name: str, context: str, rows: int) -> DatasetInput:
    frame = pd.DataFrame({"x": range(rows), "y": [i * 0.5 for i in range(rows)]})
    dataset = mlflow.data.from_pandas(frame, source=f"s3://bucket/{name}.parquet", name=name)
    return DatasetInput(dataset._to_mlflow_entity(), tags=[InputTag("mlflow.data.context", context)])


def _run(client: MlflowClient, exp_id: str, name: str, *, steps: int, inputs: list[DatasetInput],
         status: str | None = "FINISHED", extra_param: str | None = None) -> str:
    run = client.create_run(exp_id, run_name=name, tags={"team": "vision"})
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    metrics = [Metric("loss", 1.0 / (s + 1), now + s, s) for s in range(steps)]
    metrics += [Metric("acc", 0.5 + s / 100, now + s, s) for s in range(steps)]
    params = [Param("lr", "0.01"), Param("epochs", str(steps))]
    if extra_param:
        params.append(Param(extra_param, "yes"))
    client.log_batch(run_id, metrics=metrics, params=params, tags=[RunTag("stage", "dev")])
    if inputs:
        client.log_inputs(run_id, datasets=inputs)
    if status is not None:
        client.set_terminated(run_id, status=status)
    return run_id


def seed(uri: str, unique: str) -> Seeded:
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    out = Seeded()
    vision = client.create_experiment(f"kf-vision-{unique}",
                                      tags={"mlflow.note.content": "image models", "mlflow.owner": "ana"})
    text = client.create_experiment(f"kf-text-{unique}")
    out.experiments = {f"kf-vision-{unique}": vision, f"kf-text-{unique}": text}
    train, evals, produced = (_dataset_input(f"digits-{unique}", "training", 5),
                              _dataset_input(f"digits-eval-{unique}", "eval", 3),
                              _dataset_input(f"preds-{unique}", "output", 2))
    out.runs["train"] = _run(client, vision, "train", steps=4, inputs=[train, evals, produced])
    out.runs["plain"] = _run(client, vision, "plain", steps=2, inputs=[], extra_param="warmup")
    out.runs["broken"] = _run(client, vision, "broken", steps=1, inputs=[train], status="FAILED")
    out.runs["live"] = _run(client, text, "live", steps=3, inputs=[evals], status=None)
    model = f"kf-model-{unique}"
    client.create_registered_model(model, tags={"domain": "vision"}, description="digit classifier")
    for run_name in ("train", "plain"):
        client.create_model_version(model, f"runs:/{out.runs[run_name]}/model", run_id=out.runs[run_name],
                                    tags={"from": run_name}, description=f"from {run_name}")
    client.set_registered_model_alias(model, "champion", "1")
    out.models.append(model)
    return out
