"""Turn measurements into the markdown the issue asks for: a table, the targets, the machine.

The same text is printed and written under `bench/results/` (with a JSON twin for scripts), so
a number quoted anywhere can be traced to the run and the machine that produced it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from bench.harness import TOTAL, Measured
from bench.measure import writes
from bench.scenarios import (
    MIRROR,
    MIRROR_CHANGED,
    MIRROR_COPY,
    MIRROR_DST,
    MIRROR_FULL,
    MIRROR_SRC,
    MIRROR_TOOL,
    MIRROR_UNCHANGED,
)
from bench.tools import LOWER_BOUND as LOWER_BOUND_TOOL
from bench.tools import REPO

FERRY = "ferry"
LOWER_BOUND = LOWER_BOUND_TOOL.name


@dataclass(frozen=True)
class Target:
    what: str
    goal: str
    measured: float | None          # None: not measured (a side failed or was not run)
    met: bool | None
    note: str = ""

    def row(self) -> str:
        value = "n/a" if self.measured is None else _number(self.measured)
        verdict = {True: "met", False: "missed", None: "-" if self.goal == "-" else "not measured"}[self.met]
        return f"| {self.what} | {self.goal} | {value} | {verdict} | {self.note} |"


def _number(value: float) -> str:
    """Two decimals; two significant digits below 0.1, where a sync's ratio to a full copy lies."""
    return f"{value:.2g}" if 0 < abs(value) < 0.1 else f"{value:.2f}"


def machine_facts(workers: int, load_before: tuple[float, ...]) -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines()
                   if line.startswith("MemTotal")), 0)
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "python": platform.python_version(),
        "mlflow (servers, ferry)": metadata.version("mlflow"),
        "mlflow-export-import": _peer_version("mlflow-export-import", "databricks_mlflow_export_import"),
        "kiroframe-importer": _peer_version("kiroframe-importer", "kiroframe_importer"),
        "mlflow server workers": str(workers),
        "load average (1 min) before / after": f"{load_before[0]:.2f} / {os.getloadavg()[0]:.2f}",
    }


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _peer_version(venv: str, dist: str) -> str:
    found = sorted((REPO / ".peers" / venv).glob(f"lib/python*/site-packages/{dist}-*.dist-info"))
    return found[0].name.removeprefix(f"{dist}-").removesuffix(".dist-info") if found else "not installed"


def _find(results: Sequence[Measured], scenario: str, tool: str, step: str) -> Measured | None:
    found = next((m for m in results if (m.scenario, m.tool, m.step) == (scenario, tool, step)), None)
    return found if found is not None and found.ok else None


def _case_total(results: Sequence[Measured], scenario: str, tool: str) -> Measured | None:
    """The whole case: its total when it has several steps (None if any failed), else its one step."""
    steps = [m for m in results if (m.scenario, m.tool) == (scenario, tool)]
    whole = next((m for m in steps if m.step == TOTAL), steps[0] if len(steps) == 1 else None)
    return whole if whole is not None and whole.ok else None


def _speedup(results: Sequence[Measured], what: str, scenario: str, peer: str, goal: float | None) -> Target:
    ours, theirs = _case_total(results, scenario, FERRY), _case_total(results, scenario, peer)
    value = theirs.seconds / ours.seconds if ours and theirs else None
    if goal is None:  # reported, no target
        return Target(what, "-", value, None, _bound_note(ours, theirs))
    return Target(what, f">= {goal:g}x faster", value, None if value is None else value >= goal,
                  _bound_note(ours, theirs))


def _request_ratio(results: Sequence[Measured], scenario: str, peer: str) -> Target:
    ours, theirs = _case_total(results, scenario, FERRY), _case_total(results, scenario, peer)
    value = ours.median("requests") / theirs.median("requests") if ours and theirs and theirs.median("requests") else None
    note = ""
    if ours and theirs:
        # MLflow moves artifacts one file per request, for every tool alike; the rest is each tool's own.
        mine, peers = _without_artifacts(ours), _without_artifacts(theirs)
        note = (f"artifact transfers ferry {ours.median('requests') - mine:.0f}, peer "
                f"{theirs.median('requests') - peers:.0f}; without them ferry {mine:.0f} / peer {peers:.0f} = "
                f"{mine / peers:.2f}" if peers else "")
    return Target(f"{scenario} export + import, HTTP requests ferry / {peer}", "<= 0.20", value,
                  None if value is None else value <= 0.2, note)


def _without_artifacts(m: Measured) -> float:
    return float(statistics.median(
        sum(n for name, n in s.endpoints.items() if "/mlflow-artifacts/" not in name) for s in m.good))


def _versus_lower_bound(results: Sequence[Measured], step: str, what: str) -> Target:
    ours, bound = _find(results, "experiment", FERRY, "export"), _find(results, "lower-bound", LOWER_BOUND, step)
    value = ours.seconds / bound.seconds if ours and bound else None
    note = f"ferry {ours.seconds:.2f} s, bound {bound.seconds:.2f} s" if ours and bound else ""
    return Target(f"ferry experiment export / raw REST lower bound ({what})", "<= 1.5x", value,
                  None if value is None else value <= 1.5, note)


def _versus_trace_bound(results: Sequence[Measured]) -> Target:
    ours, bound = _case_total(results, "traces", FERRY), _find(results, "traces", LOWER_BOUND, "copy")
    value = ours.seconds / bound.seconds if ours and bound else None
    note = (f"ferry {ours.seconds:.2f} s, {ours.median('requests'):.0f} req; bound {bound.seconds:.2f} s, "
            f"{bound.median('requests'):.0f} req" if ours and bound else "")
    return Target("ferry traces export + import / raw REST lower bound (time)", "-", value, None, note)


def _memory(results: Sequence[Measured]) -> Target:
    one, ten = _find(results, "memory 1x", FERRY, "export"), _find(results, "memory 10x", FERRY, "export")
    value = ten.median("peak_rss_mb") / one.median("peak_rss_mb") if one and ten else None
    note = f"{one.median('peak_rss_mb'):.0f} MB -> {ten.median('peak_rss_mb'):.0f} MB" if one and ten else ""
    return Target("peak RSS of export, 10x runs / 1x runs", "<= 1.2x", value, None if value is None else value <= 1.2,
                  note)


# mlflow-export-import took 2.9 s a run in the experiment scenario (29.0 s for 10 runs, bench/results/20261123-174735-quick.md)
PEER_SECONDS_PER_RUN = 2.9


def _on(m: Measured, role: str, count: Callable[[dict[str, int]], int] = lambda e: sum(e.values())) -> float:
    """Median over good samples of what a server (`role`, or every role it prefixes) served."""
    return float(statistics.median(
        sum(count(e) for r, e in s.by_server.items() if r == role or r.startswith(role + "-")) for s in m.good))


def _sides(m: Measured) -> str:
    return (f"{m.seconds:.2f} s, {m.median('requests'):.0f} req: source {_on(m, MIRROR_SRC):.0f}, destination "
            f"{_on(m, MIRROR_DST):.0f} ({_on(m, MIRROR_DST, writes):.0f} writes)")


def _mirror_versus_full(results: Sequence[Measured], step: str, attr: str) -> Target:
    """A sync's requests or time over the mirror's full copy."""
    sync, full = _find(results, MIRROR, MIRROR_TOOL, step), _find(results, MIRROR, MIRROR_TOOL, MIRROR_FULL)
    value = sync.median(attr) / full.median(attr) if sync and full and full.median(attr) else None
    unit = "time" if attr == "seconds" else "HTTP requests"
    note = f"{step} {_sides(sync)}; full copy {_sides(full)}" if sync and full else ""
    return Target(f"mirror: {step} / full copy, {unit}", "-", value, None, note)


def _mirror_unchanged_writes(results: Sequence[Measured]) -> Target:
    sync = _find(results, MIRROR, MIRROR_TOOL, MIRROR_UNCHANGED)
    value = _on(sync, MIRROR_DST, writes) if sync else None
    return Target("mirror: no-change sync, write requests to the destination", "= 0", value,
                  None if value is None else value == 0, _sides(sync) if sync else "")


def _mirror_versus_copy(results: Sequence[Measured], attr: str) -> Target:
    """The mirror's full copy over the export + import that copies the same experiment."""
    full, copy = _find(results, MIRROR, MIRROR_TOOL, MIRROR_FULL), _case_total(results, MIRROR, MIRROR_COPY)
    value = full.median(attr) / copy.median(attr) if full and copy and copy.median(attr) else None
    unit = "time" if attr == "seconds" else "HTTP requests"
    note = (f"mirror {full.seconds:.2f} s, {full.median('requests'):.0f} req; export + import {copy.seconds:.2f} s, "
            f"{copy.median('requests'):.0f} req" if full and copy else "")
    return Target(f"mirror: full copy / ferry export + import of the same experiment, {unit}", "-", value, None, note)


def _mirror_versus_copy_of_change(results: Sequence[Measured]) -> Target:
    """What the small change costs as a sync against carrying it with a full export + import."""
    sync, copy = _find(results, MIRROR, MIRROR_TOOL, MIRROR_CHANGED), _case_total(results, MIRROR, MIRROR_COPY)
    value = copy.seconds / sync.seconds if sync and copy else None
    note = (f"export + import {copy.seconds:.2f} s, {copy.median('requests'):.0f} req; small-change sync "
            f"{sync.seconds:.2f} s, {sync.median('requests'):.0f} req" if sync and copy else "")
    return Target("mirror: small change carried by a sync, speed-up over a new export + import", "-", value, None,
                  note)


def _mirror_peer(results: Sequence[Measured]) -> Target:
    full = _find(results, MIRROR, MIRROR_TOOL, MIRROR_FULL)
    runs = _on(full, MIRROR_DST, lambda e: e.get("POST /api/2.0/mlflow/runs/create", 0)) if full else 0
    hours = runs * PEER_SECONDS_PER_RUN / 3600
    return Target("mirror: mlflow-export-import export + import of the same experiment", "-", None, None,
                  f"not run: at the {PEER_SECONDS_PER_RUN} s a run it takes in the experiment scenario, the "
                  f"{runs:.0f} runs would take {hours:.1f} h" if runs else "not run: hours at 10 000 runs")


def targets(results: Sequence[Measured], scenarios: Sequence[str], extra: Sequence[Target] = ()) -> list[Target]:
    """The issue's targets for the scenarios that ran; "not measured" where a side failed."""
    mei, kfi = "mlflow-export-import", "kiroframe-importer"
    wanted: list[tuple[tuple[str, ...], Callable[[], Target]]] = [
        (("experiment",), lambda: _speedup(results, f"experiment export + import, speed-up over {mei}",
                                           "experiment", mei, 5)),
        (("experiment",), lambda: _request_ratio(results, "experiment", mei)),
        (("model",), lambda: _speedup(results, f"model export + import, speed-up over {mei}", "model", mei, None)),
        (("kiroframe-export",), lambda: _speedup(results, f"Kiroframe export, speed-up over {kfi}",
                                                 "kiroframe-export", kfi, 5)),
        (("kiroframe-push",), lambda: _speedup(results, f"Kiroframe export + push, speed-up over {kfi}",
                                               "kiroframe-push", kfi, 5)),
        (("experiment", "lower-bound"), lambda: _versus_lower_bound(results, "runs", "runs and metrics only")),
        (("experiment", "lower-bound"), lambda: _versus_lower_bound(results, "runs+artifacts",
                                                                    "runs, metrics and artifact files")),
        (("memory",), lambda: _memory(results)),
        (("traces",), lambda: _speedup(results, f"traces export + import, speed-up over {mei}", "traces", mei, None)),
        (("traces",), lambda: _versus_trace_bound(results)),
        ((MIRROR,), lambda: _mirror_versus_copy(results, "seconds")),
        ((MIRROR,), lambda: _mirror_versus_copy(results, "requests")),
        ((MIRROR,), lambda: _mirror_versus_full(results, MIRROR_UNCHANGED, "requests")),
        ((MIRROR,), lambda: _mirror_versus_full(results, MIRROR_UNCHANGED, "seconds")),
        ((MIRROR,), lambda: _mirror_unchanged_writes(results)),
        ((MIRROR,), lambda: _mirror_versus_full(results, MIRROR_CHANGED, "requests")),
        ((MIRROR,), lambda: _mirror_versus_full(results, MIRROR_CHANGED, "seconds")),
        ((MIRROR,), lambda: _mirror_versus_copy_of_change(results)),
        ((MIRROR,), lambda: _mirror_peer(results)),
    ]
    return [make() for needs, make in wanted if set(needs) <= set(scenarios)] + list(extra)


def _bound_note(ours: Measured | None, theirs: Measured | None) -> str:
    """Where the time goes: requests and the server's CPU per side."""
    if not ours or not theirs:
        return ""
    return "; ".join(
        f"{who} {m.seconds:.2f} s, {m.median('requests'):.0f} req, server CPU {m.median('server_cpu_seconds'):.1f} s"
        + (f" ({m.failures} of {len(m.samples)} runs failed)" if m.failures else "")
        for who, m in (("ferry", ours), ("peer", theirs)))


def table(results: Sequence[Measured]) -> str:
    lines = ["| scenario | step | tool | median s | min-max s | HTTP requests | server CPU s | peak RSS MB | failed |",
             "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for m in results:
        if not m.samples:
            continue
        failed = f"{m.failures}/{len(m.samples)}: {m.error.replace('|', '/')}" if m.failures else ""
        if not m.ok:
            lines.append(f"| {m.scenario} | {m.step} | {m.tool} | | | | | | {failed} |")
            continue
        low, high = m.spread
        lines.append(f"| {m.scenario} | {m.step} | {m.tool} | {m.seconds:.2f} | {low:.2f}-{high:.2f} | "
                     f"{m.median('requests'):.0f} | {m.median('server_cpu_seconds'):.1f} | "
                     f"{m.median('peak_rss_mb'):.0f} | {failed} |")
    return "\n".join(lines)


def endpoint_breakdown(results: Sequence[Measured], top: int = 6) -> str:
    """Per case, the endpoints that took most requests (first good run): where a count comes from."""
    lines = []
    for m in results:
        if not m.good or not m.good[0].endpoints or (m.step != TOTAL and _has_total(results, m)):
            continue
        counts = sorted(m.good[0].endpoints.items(), key=lambda kv: (-kv[1], kv[0]))
        shown = ", ".join(f"{_short_endpoint(name)} {n}" for name, n in counts[:top])
        rest = sum(n for _, n in counts[top:])
        lines.append(f"- {m.scenario}, {m.tool}: {shown}" + (f", other {rest}" if rest else ""))
    return "\n".join(lines)


def _short_endpoint(name: str) -> str:
    """"POST /api/2.0/mlflow/runs/create" -> "POST runs/create"."""
    method, _, path = name.partition(" ")
    return f"{method} {path.split('/2.0/', 1)[-1].removeprefix('mlflow/')}"


def _has_total(results: Sequence[Measured], m: Measured) -> bool:
    return any((r.scenario, r.tool, r.step) == (m.scenario, m.tool, TOTAL) for r in results)


def render(title: str, facts: dict[str, str], workloads: dict[str, str], results: Sequence[Measured],
           goals: Sequence[Target], repeats: int, warmup: int) -> str:
    parts = [f"# {title}", "", "## Machine", ""]
    parts += [f"- {key}: {value}" for key, value in facts.items()]
    parts += ["", "## Workloads", ""]
    parts += [f"- {key}: {value}" for key, value in workloads.items()]
    parts += ["", f"## Results (median of {repeats} after {warmup} warm-up)", "", table(results), "",
              "## Where the requests go", "", endpoint_breakdown(results), "",
              "## Targets", "", "| target | goal | measured | verdict | note |", "|---|---|---:|---|---|"]
    parts += [t.row() for t in goals]
    return "\n".join(parts) + "\n"


def write(out_dir: Path, stem: str, text: str, results: Sequence[Measured], goals: Sequence[Target],
          facts: dict[str, str]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / f"{stem}.md"
    md.write_text(text)
    data = {
        "machine": facts,
        "results": [{"scenario": m.scenario, "tool": m.tool, "step": m.step,
                     "samples": [asdict(s) for s in m.samples]} for m in results],
        "targets": [asdict(t) for t in goals],
    }
    (out_dir / f"{stem}.json").write_text(json.dumps(data, indent=2) + "\n")
    return md
