"""The on-disk shape of an evaluation dataset, as mlflow-export-import 1.2.x writes it, and record matching.

``evaluation_dataset.json`` holds ``mlflow.evaluation_dataset``: what MLflow's
``EvaluationDataset.to_dict()`` returns (name, digest, source, source_type, dataset_id, tags as a
dict, schema and profile as JSON strings, times, users, ``experiment_ids`` and every record as
``DatasetRecord.to_dict()``). Experiment ids mean nothing on another server, so we also write
``_experiment_names`` (id to name, the peer's underscore convention for derived fields); the peer
ignores it, and an import links the destination experiments of those names.

MLflow matches records by their inputs (a hash of the inputs as sorted JSON) and merges
expectations, tags and outputs into a record with the same inputs; its source is never changed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ferry.tracking.transport import JsonDict

DATASET_FILE = "evaluation_dataset.json"
SUMMARY_FILE = "evaluation_datasets_summary.json"
SECTION = "evaluation_dataset"
SOURCE_TYPE = "mlflow_evaluation_dataset"
EXPERIMENT_NAMES = "_experiment_names"

# Destination tags naming where an imported dataset came from: names are not unique in MLflow, so
# the source id is what finds an earlier import.
SOURCE_DATASET_TAG = "ferry.source.dataset_id"
SOURCE_URI_TAG = "ferry.source.uri"
FERRY_TAG_PREFIX = "ferry."

RECORD_FIELDS = ("inputs", "outputs", "expectations", "tags", "source")


def dataset_to_file(dataset: JsonDict, records: list[JsonDict], experiments: Mapping[str, str | None]) -> JsonDict:
    """`EvaluationDataset.to_dict()`'s shape from the REST answers, plus the experiments' names."""
    dataset_id = dataset["dataset_id"]
    out: JsonDict = {
        "name": dataset.get("name"),
        "digest": dataset.get("digest"),
        "source": json.dumps({"dataset_id": dataset_id}),
        "source_type": SOURCE_TYPE,
        "dataset_id": dataset_id,
        "tags": dict(dataset.get("tags") or {}),
        "schema": dataset.get("schema"),
        "profile": dataset.get("profile"),
        "created_time": dataset.get("created_time"),
        "last_update_time": dataset.get("last_update_time"),
        "created_by": dataset.get("created_by"),
        "last_updated_by": dataset.get("last_updated_by"),
        "experiment_ids": list(experiments),
        EXPERIMENT_NAMES: {eid: name for eid, name in experiments.items() if name},
        "records": records,
    }
    return out


def user_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    """Tags without our own ``ferry.*`` bookkeeping."""
    return {str(k): "" if v is None else str(v) for k, v in tags.items() if not str(k).startswith(FERRY_TAG_PREFIX)}


def inputs_key(record: Mapping[str, Any]) -> str:
    """What MLflow identifies a record by: its inputs as sorted JSON."""
    return json.dumps(record.get("inputs") or {}, sort_keys=True)


def record_body(record: Mapping[str, Any]) -> JsonDict:
    """The fields of an exported record that an upsert carries (ids, times and users are the server's)."""
    body: JsonDict = {"inputs": record.get("inputs") or {}}
    for key in ("outputs", "expectations", "tags", "source"):
        if record.get(key):
            body[key] = record[key]
    return body


def needs_merge(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether upserting `wanted` would change `existing` (same inputs): a rerun sends nothing."""
    for key in ("expectations", "tags"):
        have = existing.get(key) or {}
        if any(k not in have or have[k] != v for k, v in (wanted.get(key) or {}).items()):
            return True
    want_outputs = wanted.get("outputs")
    return bool(want_outputs) and existing.get("outputs") != want_outputs


def same_source(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """A record's source cannot be changed by an upsert; a difference is reported, not hidden."""
    want = wanted.get("source")
    return not want or _source(existing.get("source")) == _source(want)


def _source(source: Any) -> Any:
    if isinstance(source, Mapping):
        return {"source_type": source.get("source_type"), "source_data": source.get("source_data") or {}}
    return source


def parsed(text: Any) -> Any:
    """A schema or profile string as JSON (what comparing them looks at), None if unset."""
    if not text:
        return None
    return json.loads(text) if isinstance(text, str) else text


def dir_name(dataset: Mapping[str, Any]) -> str:
    """``<name>_<dataset_id>`` as the peer names a bulk export's directories, safe as one path segment."""
    name = re.sub(r"[/\\\x00]", "_", str(dataset.get("name") or "dataset")).lstrip(".") or "dataset"
    return f"{name}_{dataset['dataset_id']}"
