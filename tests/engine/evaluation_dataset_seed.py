"""Evaluation datasets seeded through MLflow's own `mlflow.genai.datasets`, and the view tests compare.

The records cover what a dataset holds: nested inputs, expectations of several types, record tags,
an explicit source with source data, outputs, and a record with inputs only (source inferred).
They are merged in two calls, as users build datasets, so the schema grows across merges.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import mlflow
from mlflow.genai import datasets as genai_datasets

from ferry.engine.evaluation_dataset_format import inputs_key, parsed, user_tags
from ferry.tracking import TrackingClient
from ferry.tracking.datasets import Datasets

FIRST_RECORDS: list[dict[str, Any]] = [
    {"inputs": {"question": "What is MLflow?"},
     "expectations": {"expected_response": "An open source platform", "score": 0.9},
     "tags": {"topic": "faq", "difficulty": "easy"}},
    {"inputs": {"question": "2+2?", "context": {"numbers": [2, 2], "op": "add"}},
     "expectations": {"answer": 4, "facts": ["arithmetic"]}},
]
SECOND_RECORDS: list[dict[str, Any]] = [
    {"inputs": {"question": "Who wrote it?"}, "outputs": {"response": "Databricks"},
     "expectations": {"expected_response": "Databricks", "is_correct": True},
     "source": {"source_type": "DOCUMENT", "source_data": {"doc_uri": "s3://docs/mlflow.pdf"}},
     "tags": {"topic": "history"}},
    {"inputs": {"question": "generated"}},
]


@dataclass(frozen=True)
class SeededDataset:
    dataset_id: str
    name: str
    experiments: list[str]


def seed_dataset(uri: str, name: str, experiments: Sequence[str], *, tags: dict[str, str] | None = None,
                 records: Sequence[Sequence[dict[str, Any]]] = (FIRST_RECORDS, SECOND_RECORDS)) -> SeededDataset:
    """A dataset linked to `experiments` (created if missing), its records merged batch by batch."""
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(uri)
    ids = []
    for exp_name in experiments:
        exp = client.get_experiment_by_name(exp_name)
        ids.append(exp.experiment_id if exp else client.create_experiment(exp_name))
    dataset = genai_datasets.create_dataset(name=name, experiment_id=ids,
                                            tags=tags or {"team": "eval", "stage": "gold"})
    for batch in records:
        dataset.merge_records([json.loads(json.dumps(r)) for r in batch])
    return SeededDataset(dataset.dataset_id, name, list(experiments))


def dataset_view(client: TrackingClient, dataset_id: str) -> dict[str, Any]:
    """Everything an import must carry, without what the server assigns (ids, times, digest)."""
    datasets = Datasets(client)
    dataset = datasets.get(dataset_id)
    experiments = sorted(client.get_experiment(e)["name"] for e in datasets.experiment_ids(dataset_id))
    records = sorted(datasets.records(dataset_id), key=inputs_key)
    return {
        "name": dataset["name"],
        "tags": user_tags(dataset["tags"]),
        "schema": parsed(dataset.get("schema")),
        "profile": parsed(dataset.get("profile")),
        "created_by": dataset.get("created_by"),
        "experiments": experiments,
        "records": [record_view(r) for r in records],
    }


def record_view(record: dict[str, Any]) -> dict[str, Any]:
    return {key: record.get(key) for key in
            ("inputs", "outputs", "expectations", "tags", "source", "source_type", "created_by")}
