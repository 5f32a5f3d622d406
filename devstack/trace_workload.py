"""Seed a real MLflow 3 server with many traces, through MLflow's own tracing API.

Each trace is a root span with `spans - 1` children (`mlflow.start_span`), inputs, outputs and
attributes on each; every `assess_every`-th trace also gets a human feedback and an expectation
(`mlflow.log_feedback`, `mlflow.log_expectation`). That is the data a user's agent leaves behind,
written the way MLflow's client writes it: spans to the server's OTLP endpoint, then the trace
info. Synchronously: with MLflow's asynchronous export queue, a loaded machine let some traces'
info arrive before their spans, and their spans were then not stored. The queue settings below
stay for a caller that turns asynchronous logging on; the count is checked against the server
at the end. The seeding runs in a child process: the queue's size and workers are
read once per process, and the caller's own MLflow state is left alone.

    python -m devstack.trace_workload --uri http://127.0.0.1:5000 --experiment traces --traces 1000 --spans 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

EXPORT_WORKERS = 8   # MLflow's async export threads (its default is 10; the server has 2 cores to share)
ASSESS_THREADS = 4
SPAN_BATCH = 200     # spans per OTLP request, of many traces (MLflow's default is 5)


@dataclass(frozen=True)
class SeededTraces:
    uri: str
    experiment_id: str
    experiment_name: str
    traces: int
    spans_per_trace: int
    assessments: int
    seconds: float


def seed_traces(uri: str, experiment_name: str, traces: int, spans: int = 2, *,
                assess_every: int = 10, timeout: float = 1800) -> SeededTraces:
    """Seed `traces` traces of `spans` spans into `experiment_name` at `uri` (in a child process)."""
    done = subprocess.run([sys.executable, "-m", "devstack.trace_workload", "--uri", uri, "--experiment",
                           experiment_name, "--traces", str(traces), "--spans", str(spans), "--assess-every",
                           str(assess_every)], capture_output=True, text=True, timeout=timeout,
                          cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0:
        raise RuntimeError(f"seeding traces failed (exit {done.returncode}): {done.stderr[-2000:]}")
    return SeededTraces(**json.loads(done.stdout.strip().splitlines()[-1]))


def _seed_here(uri: str, experiment_name: str, traces: int, spans: int, assess_every: int) -> SeededTraces:
    # A task per finished span and one per trace info, at most.
    os.environ["MLFLOW_ASYNC_TRACE_LOGGING_MAX_QUEUE_SIZE"] = str(traces * (spans + 1) + 100)
    os.environ["MLFLOW_ASYNC_TRACE_LOGGING_MAX_WORKERS"] = str(EXPORT_WORKERS)
    os.environ["MLFLOW_ASYNC_TRACE_LOGGING_MAX_SPAN_BATCH_SIZE"] = str(SPAN_BATCH)
    import mlflow
    from mlflow.entities import AssessmentSource, SpanType

    from devstack.fluent import point_fluent_api_at

    began = time.monotonic()
    point_fluent_api_at(uri)  # synchronous: under load, asynchronous logging lost some traces' spans
    experiment_id = mlflow.set_experiment(experiment_name).experiment_id
    ids: list[str] = []
    for n in range(traces):
        with mlflow.start_span("agent", span_type=SpanType.AGENT) as root:
            root.set_inputs({"question": f"question {n}"})
            for c in range(spans - 1):
                with mlflow.start_span(f"step-{c}", span_type=SpanType.LLM if c == 0 else SpanType.TOOL) as child:
                    child.set_inputs({"n": n, "c": c})
                    child.set_attributes({"model": f"m-{c}", "tokens": n % 97})
                    child.set_outputs({"answer": f"answer {n}.{c}"})
            root.set_outputs({"answer": f"answer {n}"})
            mlflow.update_current_trace(tags={"seed.index": str(n)})
        ids.append(root.trace_id)
    mlflow.flush_trace_async_logging(terminate=True)

    human = AssessmentSource(source_type="HUMAN", source_id="reviewer@example.com")

    def assess(n: int) -> int:
        trace_id = ids[n]
        mlflow.log_feedback(trace_id=trace_id, name="correct", value=n % 2 == 0, rationale=f"checked {n}",
                            source=human)
        mlflow.log_expectation(trace_id=trace_id, name="expected", value={"answer": f"answer {n}"}, source=human)
        return 2

    with ThreadPoolExecutor(ASSESS_THREADS) as pool:
        assessments = sum(pool.map(assess, range(0, traces, assess_every) if assess_every else []))
    found = _count(uri, experiment_id)
    if found != traces:
        raise RuntimeError(f"seeded {traces} traces but the server holds {found}: MLflow's export queue lost some")
    return SeededTraces(uri, experiment_id, experiment_name, traces, spans, assessments,
                        round(time.monotonic() - began, 2))


def _count(uri: str, experiment_id: str) -> int:
    from ferry.tracking import TrackingClient
    from ferry.tracking.traces import Traces

    return sum(1 for _ in Traces(TrackingClient(uri)).search([experiment_id]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.trace_workload", description=__doc__.splitlines()[0])
    parser.add_argument("--uri", required=True)
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--traces", type=int, required=True)
    parser.add_argument("--spans", type=int, default=2, help="spans per trace, the root among them")
    parser.add_argument("--assess-every", type=int, default=10, help="every n-th trace gets assessments (0: none)")
    args = parser.parse_args(argv)
    if args.spans < 1 or args.traces < 0:
        parser.error("--spans must be at least 1 and --traces at least 0")
    seeded = _seed_here(args.uri, args.experiment, args.traces, args.spans, args.assess_every)
    print(json.dumps(asdict(seeded)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
