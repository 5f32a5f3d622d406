"""Turn measurements into the markdown the issue asks for: a table, the targets, the machine.

The same text is printed and written under `bench/results/` (with a JSON twin for scripts), so
a number quoted anywhere can be traced to the run and the machine that produced it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from bench.harness import TOTAL, Measured
from bench.tools import REPO

FERRY = "ferry"


@dataclass(frozen=True)
class Target:
    what: str
    goal: str
    measured: float | None          # None: not measured (a side failed or was not run)
    met: bool | None
    note: str = ""

    def row(self) -> str:
        value = "n/a" if self.measured is None else f"{self.measured:.2f}"
        verdict = {True: "met", False: "missed", None: "not measured"}[self.met]
        return f"| {self.what} | {self.goal} | {value} | {verdict} | {self.note} |"


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
    return _find(results, scenario, tool, TOTAL) or _find(results, scenario, tool, "export") \
        or _find(results, scenario, tool, "push")


def targets(results: Sequence[Measured], extra: Sequence[Target] = ()) -> list[Target]:
    """The issue's targets, measured where both sides of the comparison ran."""
    out: list[Target] = []

    def speedup(what: str, scenario: str, peer: str) -> None:
        ours, theirs = _case_total(results, scenario, FERRY), _case_total(results, scenario, peer)
        value = theirs.seconds / ours.seconds if ours and theirs else None
        out.append(Target(what, ">= 5x faster", value, None if value is None else value >= 5,
                          _bound_note(ours, theirs)))

    speedup("experiment export + import, speed-up over mlflow-export-import", "experiment", "mlflow-export-import")
    ours, theirs = _case_total(results, "experiment", FERRY), _case_total(results, "experiment", "mlflow-export-import")
    ratio = ours.median("requests") / theirs.median("requests") if ours and theirs and theirs.median("requests") else None
    out.append(Target("experiment export + import, HTTP requests ferry / mlflow-export-import", "<= 0.20", ratio,
                      None if ratio is None else ratio <= 0.2))
    speedup("model export + import, speed-up over mlflow-export-import (no target; reported)", "model",
            "mlflow-export-import")
    out[-1] = Target(out[-1].what, "-", out[-1].measured, None if out[-1].measured is None else True, out[-1].note)
    speedup("Kiroframe export, speed-up over kiroframe-importer", "kiroframe-export", "kiroframe-importer")
    speedup("Kiroframe export + push, speed-up over kiroframe-importer", "kiroframe-push", "kiroframe-importer")

    ours_export = _find(results, "experiment", FERRY, "export")
    bound = _find(results, "lower-bound", "raw REST lower bound", "export")
    value = ours_export.seconds / bound.seconds if ours_export and bound else None
    out.append(Target("ferry experiment export / raw REST lower bound", "<= 1.5x", value,
                      None if value is None else value <= 1.5,
                      f"lower bound {bound.seconds:.2f} s" if bound else ""))

    one, ten = _find(results, "memory 1x", FERRY, "export"), _find(results, "memory 10x", FERRY, "export")
    value = ten.median("peak_rss_mb") / one.median("peak_rss_mb") if one and ten else None
    out.append(Target("peak RSS of export, 10x runs / 1x runs", "<= 1.2x", value,
                      None if value is None else value <= 1.2,
                      f"{one.median('peak_rss_mb'):.0f} MB -> {ten.median('peak_rss_mb'):.0f} MB" if one and ten else ""))
    return out + list(extra)


def _bound_note(ours: Measured | None, theirs: Measured | None) -> str:
    """Where the time goes: requests and the server's CPU per side."""
    if not ours or not theirs:
        return ""
    return (f"ferry {ours.seconds:.2f} s, {ours.median('requests'):.0f} req, server CPU "
            f"{ours.median('server_cpu_seconds'):.1f} s; peer {theirs.seconds:.2f} s, "
            f"{theirs.median('requests'):.0f} req, server CPU {theirs.median('server_cpu_seconds'):.1f} s")


def table(results: Sequence[Measured]) -> str:
    lines = ["| scenario | step | tool | median s | min-max s | HTTP requests | server CPU s | peak RSS MB |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for m in results:
        if not m.samples:
            continue
        if not m.ok:
            lines.append(f"| {m.scenario} | {m.step} | {m.tool} | failed: {m.error.replace('|', '/')} | | | | |")
            continue
        low, high = m.spread
        lines.append(f"| {m.scenario} | {m.step} | {m.tool} | {m.seconds:.2f} | {low:.2f}-{high:.2f} | "
                     f"{m.median('requests'):.0f} | {m.median('server_cpu_seconds'):.1f} | "
                     f"{m.median('peak_rss_mb'):.0f} |")
    return "\n".join(lines)


def render(title: str, facts: dict[str, str], workloads: dict[str, str], results: Sequence[Measured],
           goals: Sequence[Target], repeats: int, warmup: int) -> str:
    parts = [f"# {title}", "", "## Machine", ""]
    parts += [f"- {key}: {value}" for key, value in facts.items()]
    parts += ["", "## Workloads", ""]
    parts += [f"- {key}: {value}" for key, value in workloads.items()]
    parts += ["", f"## Results (median of {repeats} after {warmup} warm-up)", "", table(results), "",
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
