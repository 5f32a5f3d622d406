"""Did an export carry every metric point? Read back after the step, outside its measurement.

Both ways of reading histories must end in the same ``run.json`` files: a faster path that drops
or repeats points would not be faster at the same work. A history is compared as the multiset of
its points (step, timestamp, value): neither endpoint promises an order among points of the same
step. A check returns what is wrong (the benchmark reports the step as failed, with it) or None.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:   # bench.history imports this module
    from bench.history import Shape

RUN_JSON = "run.json"
Point = tuple[int, int, float]
Histories = dict[str, Counter[Point]]   # key -> its points


def as_seeded(out: Path, shape: Shape) -> str | None:
    """An export of the seeded experiment with every run, key and point as `bench.history.seed` logged them."""
    expected_keys = {shape.key(k) for k in range(shape.metrics)}
    runs, differing, first = 0, 0, ""
    for doc in _run_docs(out):
        runs += 1
        name = str(doc["info"].get("run_name", ""))
        index = int(name.removeprefix("run-")) if name.removeprefix("run-").isdigit() else -1
        got = histories(doc)
        for key in sorted(expected_keys | set(got)):
            k = int(key.removeprefix("metric_")) if key in expected_keys else -1
            want = Counter(shape.point(index, k, s) for s in range(shape.steps)) if k >= 0 and index >= 0 else Counter()
            have = got.get(key, Counter())
            if have != want:
                differing += 1
                first = first or f"{name} {key}: {_difference(have, want)}"
    if runs != shape.runs:
        return f"{runs} of {shape.runs} runs exported"
    if differing:
        return f"{differing} of {shape.histories} histories differ from what was logged, first: {first}"
    return None


def same_histories(out: Path, reference: Path) -> str | None:
    """The same runs as the export in `reference` (by run id), each with the same histories."""
    wanted = {path.parent.name: path for path in reference.rglob(RUN_JSON)}   # ferry names them by run id
    seen, differing, total, first = set(), 0, 0, ""
    for doc in _run_docs(out):
        run_id = str(doc["info"]["run_id"])
        seen.add(run_id)
        if run_id not in wanted:
            return f"run {run_id} is not in the reference export"
        have, want = histories(doc), histories(_read(wanted[run_id]))
        for key in sorted(set(have) | set(want)):
            total += 1
            if have.get(key) != want.get(key):
                differing += 1
                first = first or f"run {run_id} {key}: {_difference(have.get(key, Counter()), want.get(key, Counter()))}"
    if missing := len(set(wanted) - seen):
        return f"{missing} of the reference export's {len(wanted)} runs not exported"
    if differing:
        return f"{differing} of {total} histories differ from the reference export's, first: {first}"
    return None


def histories(doc: Mapping[str, Any]) -> Histories:
    """The histories of one run.json's ``mlflow`` section (ferry and mlflow-export-import write the same)."""
    return {key: Counter((int(p["step"]), int(p["timestamp"]), float(p["value"])) for p in points)
            for key, points in (doc.get("metrics") or {}).items()}


def _difference(have: Counter[Point], want: Counter[Point]) -> str:
    missing, extra = (want - have).total(), (have - want).total()
    return f"{have.total()} points where {want.total()} were expected ({missing} missing, {extra} not expected)"


def _run_docs(out: Path) -> Iterator[Mapping[str, Any]]:
    """Each run's document, one at a time: an export of a million points is not held at once."""
    for path in sorted(out.rglob(RUN_JSON)):
        yield _read(path)


def _read(path: Path) -> Mapping[str, Any]:
    return json.loads(path.read_text())["mlflow"]
