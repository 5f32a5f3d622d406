"""MLflow 3 evaluation datasets (``mlflow.genai.datasets``) over the REST API.

The dataset endpoints exist only under ``/api/3.0/mlflow/datasets``. The server keeps a dataset's
tags, schema and profile as JSON strings and its records as one JSON string per page; this class
decodes them, so callers see plain dicts. An MLflow 2 server has none of these endpoints and
answers 404 without an MLflow error, which `Transport` raises as `EndpointMissing`: callers treat
that as "no datasets on this server".
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ferry.errors import NotFoundError, ServerError
from ferry.tracking.client import TrackingClient
from ferry.tracking.transport import JsonDict

API3 = "api/3.0/mlflow/datasets"
SEARCH_PAGE_SIZE = 1000
RECORDS_PAGE_SIZE = 1000
UPSERT_BATCH = 500  # records per upsert: one request body stays well below proxies' limits


class Datasets:
    """The evaluation datasets of one server; transport is its `TrackingClient`'s."""

    def __init__(self, client: TrackingClient) -> None:
        self.client = client

    @property
    def uri(self) -> str:
        return self.client.uri

    def _call(self, method: str, path: str, *, params: Any = None, json_body: JsonDict | None = None,
              what: str | None = None) -> JsonDict:
        return self.client.transport.call(method, f"{API3}/{path}".rstrip("/"), params=params, json=json_body,
                                          what=what)

    # -- reads -----------------------------------------------------------------------------------

    def search(self, *, experiment_ids: Sequence[str] = (), name: str | None = None) -> Iterator[JsonDict]:
        """Every dataset (decoded), optionally of some experiments or with exactly `name`."""
        body: JsonDict = {"max_results": SEARCH_PAGE_SIZE, "experiment_ids": list(experiment_ids)}
        if name is not None and "'" not in name:  # a quote would need the filter grammar's escaping
            body["filter_string"] = f"name = '{name}'"
        token: str | None = None
        while True:
            page = self._call("POST", "search", json_body={**body, **({"page_token": token} if token else {})})
            for dataset in page.get("datasets", []):
                if name is None or dataset.get("name") == name:
                    yield decode(dataset)
            token = page.get("next_page_token")
            if not token:
                return

    def get(self, dataset_id: str) -> JsonDict:
        return decode(self._call("GET", dataset_id, what=f"evaluation dataset '{dataset_id}'")["dataset"])

    def experiment_ids(self, dataset_id: str) -> list[str]:
        answer = self._call("GET", f"{dataset_id}/experiment-ids", what=f"evaluation dataset '{dataset_id}'")
        return [str(e) for e in answer.get("experiment_ids", [])]

    def records(self, dataset_id: str) -> Iterator[JsonDict]:
        """Every record of the dataset, page by page, as ``DatasetRecord.to_dict()`` gives them."""
        token: str | None = None
        while True:
            params: JsonDict = {"max_results": RECORDS_PAGE_SIZE, **({"page_token": token} if token else {})}
            page = self._call("GET", f"{dataset_id}/records", params=params,
                              what=f"evaluation dataset '{dataset_id}'")
            yield from _json_value(page.get("records"), [], f"records of evaluation dataset '{dataset_id}'")
            token = page.get("next_page_token")
            if not token:
                return

    def find_by_name(self, name: str) -> list[JsonDict]:
        """Datasets named `name`: names are not unique in MLflow, so there may be several."""
        return list(self.search(name=name))

    # -- writes ----------------------------------------------------------------------------------

    def create(self, name: str, *, tags: Mapping[str, str], experiment_ids: Sequence[str]) -> JsonDict:
        body: JsonDict = {"name": name, "experiment_ids": list(experiment_ids)}
        if tags:
            body["tags"] = json.dumps(dict(tags))
        return decode(self._call("POST", "create", json_body=body)["dataset"])

    def delete(self, dataset_id: str) -> bool:
        """Delete the dataset with its records; False if there was none."""
        try:
            self._call("DELETE", dataset_id, what=f"evaluation dataset '{dataset_id}'")
        except NotFoundError:
            return False
        return True

    def set_tags(self, dataset_id: str, tags: Mapping[str, str]) -> None:
        """Upsert `tags` (the server merges them into the existing ones)."""
        if tags:
            self._call("PATCH", f"{dataset_id}/tags", json_body={"tags": json.dumps(dict(tags))},
                       what=f"evaluation dataset '{dataset_id}'")

    def add_to_experiments(self, dataset_id: str, experiment_ids: Sequence[str]) -> None:
        if experiment_ids:
            self._call("POST", f"{dataset_id}/add-experiments",
                       json_body={"dataset_id": dataset_id, "experiment_ids": list(experiment_ids)},
                       what=f"evaluation dataset '{dataset_id}'")

    def upsert_records(self, dataset_id: str, records: Sequence[JsonDict]) -> tuple[int, int]:
        """Insert or merge records (the server matches them by their inputs); (inserted, updated)."""
        inserted = updated = 0
        for start in range(0, len(records), UPSERT_BATCH):
            chunk = list(records[start:start + UPSERT_BATCH])
            answer = self._call("POST", f"{dataset_id}/records", json_body={"records": json.dumps(chunk)},
                                what=f"evaluation dataset '{dataset_id}'")
            inserted += int(answer.get("inserted_count", 0) or 0)
            updated += int(answer.get("updated_count", 0) or 0)
        return inserted, updated


def decode(dataset: JsonDict) -> JsonDict:
    """A dataset as the REST API sends it, with its JSON-string fields (tags, schema, profile) decoded."""
    out = dict(dataset)
    what = f"evaluation dataset '{dataset.get('dataset_id')}'"
    out["tags"] = _json_value(dataset.get("tags"), {}, f"tags of {what}")
    for key in ("schema", "profile"):
        out[key] = dataset.get(key) or None  # kept as strings, as EvaluationDataset.to_dict() has them
    return out


def _json_value(text: Any, empty: Any, what: str) -> Any:
    if text is None or text == "":
        return empty
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise ServerError(f"the server sent {what} that is not JSON") from None
