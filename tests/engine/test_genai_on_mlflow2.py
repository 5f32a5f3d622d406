"""Evaluation datasets and scorers against a real MLflow 2.22 server, which has neither.

Its 404 for the MLflow 3 endpoints means "none here": an export succeeds with nothing and says
why; an import cannot create them there and lists each one as failed.
"""

from __future__ import annotations

from pathlib import Path

from devstack.mlflow_server import MlflowServer
from ferry.engine.evaluation_datasets import (
    export_evaluation_datasets,
    import_evaluation_dataset,
    import_evaluation_datasets,
)
from ferry.engine.scorers import export_scorers
from ferry.tracking import TrackingClient
from tests.engine.evaluation_dataset_seed import seed_dataset


def test_exports_from_mlflow2_carry_nothing_and_succeed(mlflow2: TrackingClient, tmp_path: Path,
                                                        unique: str) -> None:
    outcome = export_evaluation_datasets(mlflow2, tmp_path / "datasets")
    assert outcome.phase == "Succeeded" and outcome.failed == []
    assert outcome.message == (f"0 evaluation datasets, 0 records (MLflow at {mlflow2.uri} has no evaluation "
                               "datasets (MLflow 2))")
    named = export_evaluation_datasets(mlflow2, tmp_path / "named", ["qa"])
    assert named.phase == "Failed"
    assert named.failed == [f"evaluation dataset 'qa': MLflow at {mlflow2.uri} has no evaluation datasets"]

    mlflow2.create_experiment(f"old-{unique}")
    scorers = export_scorers(mlflow2, f"old-{unique}", tmp_path / "scorers")
    assert scorers.phase == "Succeeded"
    assert scorers.message == f"0 scorers, 0 scorer versions (MLflow at {mlflow2.uri} has no scorers (MLflow 2))"


def test_imports_into_mlflow2_list_every_dataset_as_failed(mlflow_src: MlflowServer, src_client: TrackingClient,
                                                           mlflow2: TrackingClient, tmp_path: Path,
                                                           unique: str) -> None:
    seeded = seed_dataset(mlflow_src.uri, f"to-mlflow2-{unique}", [])
    export_evaluation_datasets(src_client, tmp_path, [seeded.name])
    outcome = import_evaluation_datasets(mlflow2, tmp_path)
    assert outcome.phase == "Failed"
    [failure] = outcome.failed
    assert failure.startswith(f"evaluation dataset '{seeded.name}'") and "has no evaluation datasets" in failure
    [one] = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert import_evaluation_dataset(mlflow2, one).failed == outcome.failed
