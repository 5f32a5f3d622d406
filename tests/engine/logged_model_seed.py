"""Seed MLflow 3 logged models the way users log them: ``mlflow.pyfunc.log_model(name=...)``, unregistered.

One experiment with a training run that logs two models (params, model type, tags, metrics with
steps logged against each model, one against a dataset), an evaluation run that logs a metric
against the first model, and a FAILED model created without a run.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import mlflow
import mlflow.data
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus


class Echo(mlflow.pyfunc.PythonModel):
    """The smallest pyfunc model: returns its input."""

    def predict(self, context, model_input):  # type: ignore[no-untyped-def]
        return model_input


@dataclass
class SeededLoggedModels:
    uri: str
    experiment_id: str
    experiment_name: str
    train_run: str
    eval_run: str
    model_ids: dict[str, str]  # name → model id: "echo", "second", "broken"


def seed_logged_models(uri: str, experiment_name: str) -> SeededLoggedModels:
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _seed(uri, experiment_name)
    finally:
        mlflow.set_tracking_uri(previous)


def _seed(uri: str, experiment_name: str) -> SeededLoggedModels:
    client = MlflowClient(uri)
    exp_id = client.create_experiment(experiment_name)
    dataset = mlflow.data.from_pandas(pd.DataFrame({"x": [1.0, 2.0, 3.0]}), name="train-ds")
    with mlflow.start_run(experiment_id=exp_id, run_name="train") as run:
        mlflow.log_input(dataset, context="training")
        echo = mlflow.pyfunc.log_model(name="echo", python_model=Echo(), params={"alpha": "0.5", "depth": 3},
                                       model_type="agent", pip_requirements=["mlflow"]).model_id
        for step in range(3):
            mlflow.log_metric("acc", 0.5 + step / 10, step=step, model_id=echo)
        mlflow.log_metric("loss", 0.25, step=7, model_id=echo, dataset=dataset)
        mlflow.set_logged_model_tags(echo, {"team": "ml", "stage": "dev"})
        second = mlflow.pyfunc.log_model(name="second", python_model=Echo(), params={"beta": "2"},
                                         model_type="retriever", step=4,
                                         pip_requirements=["mlflow"]).model_id
        mlflow.log_metric("recall", 0.75, step=1, model_id=second)
    with mlflow.start_run(experiment_id=exp_id, run_name="evaluate") as evaluation:
        mlflow.log_metric("eval_acc", 0.875, step=2, model_id=echo)
    broken = client.create_logged_model(exp_id, name="broken", model_type="experimental",
                                        params={"gamma": "1"}, tags={"why": "it failed"})
    client.finalize_logged_model(broken.model_id, LoggedModelStatus.FAILED)
    return SeededLoggedModels(uri, exp_id, experiment_name, run.info.run_id, evaluation.info.run_id,
                              {"echo": echo, "second": second, "broken": broken.model_id})
