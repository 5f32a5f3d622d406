"""Did a trace step carry the traces? Read back after the step, outside its measurement.

A tool's exit code is not enough: mlflow-export-import's import-traces logs each trace's error
and exits 0. A check returns what is wrong (the benchmark reports the step as failed, with it)
or None.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ferry.tracking import TrackingClient
from ferry.tracking.traces import Traces

WORK_PATH = re.compile(r"/\S*/(?=tr-[0-9a-f]+/)")   # an export's location: this machine's, not the finding
ERROR_LINE = re.compile(r"^\s*[\w.]*(Error|Exception)\b:")


def exported(out: Path, traces: int, spans: int) -> str | None:
    """An export-traces directory with `traces` traces, each with its `spans` spans of data."""
    index = out / "traces.json"
    if not index.is_file():
        return f"no {index.name} written"
    listed = [t for e in json.loads(index.read_text())["mlflow"]["experiments"] for t in e["traces"]]
    without = sum(1 for t in listed if _span_count(out / t / "artifacts" / "traces.json") != spans)
    if len(listed) != traces or without:
        return (f"{len(listed)} of {traces} traces exported"
                + (f", {without} of them without their {spans} spans of data" if without else ""))
    return None


def _span_count(path: Path) -> int:
    return len(json.loads(path.read_text()).get("spans") or []) if path.is_file() else 0


def imported(uri: str, experiment: str, traces: int, log: Path, before: dict[str, int]) -> str | None:
    """`traces` more traces in `experiment` than the last check saw (`before` keeps count per name)."""
    client = TrackingClient(uri)
    found = client.get_experiment_by_name(experiment)
    count = 0 if found is None else sum(1 for _ in Traces(client).search([found["experiment_id"]]))
    added, before[experiment] = count - before.get(experiment, 0), count
    if added == traces:
        return None
    return f"{added} of {traces} traces imported" + (f"; the log says: {_first_error(log)}" if log.is_file() else "")


def _first_error(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if ERROR_LINE.search(line)]
    line = next((line for line in lines if "from_proto_status_code" in line), lines[0] if lines else "no error")
    return WORK_PATH.sub("<export>/", line)[:200]
