"""The raw REST lower bound of copying an experiment's traces: the fewest requests MLflow 3 allows.

Reading: paged ``traces/search`` (500 trace infos a page, assessments included) and the spans
of many traces per ``traces/batchGet``. Writing: the spans of many traces per OTLP request
(``/v1/traces``; the server sorts them by trace id) and one ``StartTraceV3`` per trace, its
assessments inline: MLflow has no batch trace-info write. Each trace gets a new id, so the
bound can be written any number of times into one server; nothing touches the disk and
nothing is checked, so no tool that carries the same traces through MLflow's REST API can make
fewer requests or be much faster than this.

    python bench/trace_lower_bound.py --uri SRC --experiment traces-5k --dst-uri DST --dst-experiment copy-1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from ferry.tracking import JsonDict, TrackingClient
from ferry.tracking.traces import Traces, span_from_json

GET_BATCH = 100    # trace ids per batchGet (a GET: the ids go in the URL)
SPANS_BATCH = 500  # spans per OTLP request


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def copy_traces(uri: str, experiment: str, dst_uri: str, dst_experiment: str, threads: int = 4) -> dict[str, int]:
    src, dst = TrackingClient(uri), TrackingClient(dst_uri)
    src_traces, dst_traces = Traces(src), Traces(dst)
    experiment_id = src.find_experiment(experiment)["experiment_id"]
    infos = {t["trace_id"]: t for t in src_traces.search([experiment_id])}
    dst_id = dst.get_or_create_experiment(dst_experiment)["experiment_id"]

    def read(ids: list[str]) -> list[JsonDict]:
        answer = src.transport.call("GET", "api/3.0/mlflow/traces/batchGet", params={"trace_ids": ids})
        return list(answer.get("traces") or [])

    def write(trace: JsonDict) -> tuple[list, JsonDict]:
        """The trace under a new id: its spans as OTLP protos, its info for StartTraceV3."""
        info = dict(infos[trace["trace_info"]["trace_id"]])
        new_otel = os.urandom(16)
        new_id = "tr-" + new_otel.hex()
        spans = [span_from_json(s) for s in trace["spans"]]
        for span in spans:
            span.trace_id = new_otel
        info.update(trace_id=new_id, trace_location={"type": "MLFLOW_EXPERIMENT",
                                                     "mlflow_experiment": {"experiment_id": dst_id}})
        info["assessments"] = [{**a, "trace_id": new_id, "assessment_id": "a-" + uuid.uuid4().hex}
                               for a in info.get("assessments") or []]
        return spans, info

    counts = {"traces": 0, "spans": 0, "assessments": 0}
    with ThreadPoolExecutor(threads) as pool:
        for traces in pool.map(read, _batches(list(infos), GET_BATCH)):
            written = [write(t) for t in traces]
            spans = [s for ss, _ in written for s in ss]
            list(pool.map(lambda chunk: dst_traces.log_spans(dst_id, chunk, what="a batch"),
                          [spans[i:i + SPANS_BATCH] for i in range(0, len(spans), SPANS_BATCH)]))
            list(pool.map(dst_traces.start_trace, [info for _, info in written]))
            counts["traces"] += len(written)
            counts["spans"] += len(spans)
            counts["assessments"] += sum(len(info["assessments"]) for _, info in written)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/trace_lower_bound.py", description=__doc__.splitlines()[0])
    parser.add_argument("--uri", required=True)
    parser.add_argument("--experiment", required=True, help="source experiment, name or id")
    parser.add_argument("--dst-uri", required=True)
    parser.add_argument("--dst-experiment", required=True, help="destination experiment name (created)")
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)
    print(json.dumps(copy_traces(args.uri, args.experiment, args.dst_uri, args.dst_experiment, args.threads)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
