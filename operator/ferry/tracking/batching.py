"""Split run data into `log-batch` requests that MLflow accepts.

MLflow rejects a batch with more than 1000 metrics, 100 params or 100 tags, more than 1000
entities in total, or a body over 1 MB. Params and tags are packed before metrics so that a run's
identity is written early.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

LIMITS = {"params": 100, "tags": 100, "metrics": 1000}
MAX_ENTITIES_PER_BATCH = 1000
MAX_BATCH_BYTES = 900_000  # MLflow's limit is 1e6; leave room for the envelope


@dataclass
class Batch:
    metrics: list[dict[str, Any]] = field(default_factory=list)
    params: list[dict[str, Any]] = field(default_factory=list)
    tags: list[dict[str, Any]] = field(default_factory=list)
    nbytes: int = 0

    @property
    def size(self) -> int:
        return len(self.metrics) + len(self.params) + len(self.tags)

    def as_json(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "params": self.params, "tags": self.tags}


def batches(metrics: Sequence[dict[str, Any]] = (), params: Sequence[dict[str, Any]] = (),
            tags: Sequence[dict[str, Any]] = ()) -> Iterator[Batch]:
    """Greedy packing in input order: each batch is as full as every limit allows."""
    batch = Batch()
    for kind, items in (("params", params), ("tags", tags), ("metrics", metrics)):
        for item in items:
            # A metric is at most ~330 bytes (250-char key), so 1000 of them always fit.
            nbytes = 0 if kind == "metrics" else len(json.dumps(item)) + 2
            bucket: list[dict[str, Any]] = getattr(batch, kind)
            if batch.size and (len(bucket) >= LIMITS[kind] or batch.size >= MAX_ENTITIES_PER_BATCH
                               or batch.nbytes + nbytes > MAX_BATCH_BYTES):
                yield batch
                batch = Batch()
                bucket = getattr(batch, kind)
            bucket.append(item)
            batch.nbytes += nbytes
    if batch.size:
        yield batch
