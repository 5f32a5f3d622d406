"""The history scenario's result: each way of reading histories beside the bulk path, as ratios.

One table, variants (a) to (d) in the order `bench.history.VARIANTS` lists them (and (e), the
export through the Databricks stand-in, when it ran), every ratio to (a): wall time, requests in all, and the history requests among them by endpoint, so a reader
sees that (a) read in bulk and the others did not. Whether each export held the same points as
(a)'s is a target row, met or missed.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from bench.harness import Measured
from bench.history import (
    BULK_ENDPOINT,
    DATABRICKS,
    HISTORY,
    HISTORY_ENDPOINTS,
    PER_METRIC_ENDPOINT,
    VARIANTS,
    Shape,
)
from bench.report import Target

ENDPOINT_NAMES = {BULK_ENDPOINT: "bulk", PER_METRIC_ENDPOINT: "per-metric"}


def _letter(index: int) -> str:
    return f"({chr(ord('a') + index)})"


def _measured(results: Sequence[Measured]) -> list[tuple[str, str, Measured | None]]:
    """(letter, variant label, its export or None if it was not run) in the variants' order."""
    found = {m.tool: m for m in results if m.scenario == HISTORY}
    return [(_letter(i), label, found.get(label)) for i, label in enumerate([v.label for v in VARIANTS] + [DATABRICKS])]


def history_requests(m: Measured, endpoint: str | None = None) -> float:
    """Median over the good repetitions of the history requests (of one endpoint, or of both)."""
    wanted = (endpoint,) if endpoint else HISTORY_ENDPOINTS
    return float(statistics.median(sum(s.endpoints.get(e, 0) for e in wanted) for s in m.good))


def _by_endpoint(m: Measured) -> str:
    """"45 bulk", "1000 per-metric", "2 bulk + 30 per-metric"."""
    parts = [f"{history_requests(m, e):.0f} {name}" for e, name in ENDPOINT_NAMES.items() if history_requests(m, e)]
    return " + ".join(parts) or "0"


def _ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}" if reference else "-"


def section(results: Sequence[Measured], shape: Shape, workers: int) -> str:
    """The markdown table of the scenario, to follow the report's own sections."""
    rows = _measured(results)
    reference = rows[0][2] if rows[0][2] is not None and rows[0][2].ok else None
    lines = ["## Metric histories: the per-metric fallback against the bulk endpoint", "",
             f"{shape.runs} runs x {shape.metrics} metrics x {shape.steps} steps ({shape.histories} histories, "
             f"{shape.points} points) on one server ({workers} workers), which serves both endpoints; each row "
             f"one `export-experiment` of the experiment (median), ratios to {rows[0][0]}.", "",
             "| | variant | wall s | time / (a) | requests | requests / (a) | history requests | histories |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for letter, label, m in rows:
        if m is None:
            continue
        if not m.ok:
            lines.append(f"| {letter} | {label} | | | | | | failed: {m.error.replace('|', '/')} |")
            continue
        seconds, requests = m.seconds, m.median("requests")
        time_ratio = _ratio(seconds, reference.seconds) if reference else "-"
        request_ratio = _ratio(requests, reference.median("requests")) if reference else "-"
        points = "as logged" if m is reference or label == DATABRICKS else "same points as (a)"
        if m.failures:
            points += f"; {m.failures} of {len(m.samples)} repetitions failed: {m.error.replace('|', '/')}"
        lines.append(f"| {letter} | {label} | {seconds:.2f} | {time_ratio} | {requests:.0f} | {request_ratio} | "
                     f"{_by_endpoint(m)} | {points} |")
    if (dbx := rows[-1][2]) is not None and dbx.ok:
        lines += ["", f"{rows[-1][0]} reads another server seeded alike, through the stand-in (TLS, a bearer token, a "
                  f"proxy hop served by the benchmark's own process); its requests are those the server behind it "
                  f"served: the stand-in answers `artifacts/list` (one per run) itself, and looks each run up there "
                  f"once (`runs/get`) the first time it lists the run's artifacts."]
    return "\n".join(lines) + "\n"


def targets(results: Sequence[Measured], shape: Shape) -> list[Target]:
    """Per export after (a): were its histories the same points as (a)'s in every repetition?

    (e)'s server is another one, seeded alike: its exports are compared with what was logged,
    as (a)'s are.
    """
    goals = []
    for letter, label, m in _measured(results)[1:]:
        if m is None or not m.samples:
            continue
        other = "what was logged" if label == DATABRICKS else "(a)'s export of the repetition"
        what = f"history: {letter} {label}, histories differing from " + (
            "what was logged" if label == DATABRICKS else "(a)'s")
        failed = [s for s in m.samples if not s.ok]
        note = (f"{len(m.samples) - len(failed)} of {len(m.samples)} repetitions the same as {other}, compared "
                f"point by point ({shape.histories} histories, {shape.points} points)")
        if failed:
            goals.append(Target(what, "= 0", None, False, f"{note}; {failed[0].error.replace('|', '/')}"))
        else:
            goals.append(Target(what, "= 0", 0.0, True, note))
    return goals
