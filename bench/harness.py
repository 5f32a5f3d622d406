"""Repeat each tool's work on the stage and keep every measurement.

A case is one tool doing one scenario, as a sequence of steps (export, then import of what was
exported). Each repetition starts from empty output directories and imports under fresh names,
so every repetition does the full work; the first `warmup` repetitions fill the page cache and
the servers' caches and are not counted.
"""

from __future__ import annotations

import os
import shutil
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.measure import Sample, run_measured
from bench.stage import Stage

Argv = Callable[[Path, int], list[str]]   # (repetition dir, repetition index) -> argv
Check = Callable[[Path, int], str | None]  # (repetition dir, repetition index) -> what is wrong, or None
TOTAL = "total"


@dataclass(frozen=True)
class Step:
    label: str
    argv: Argv
    tracking_uri: str
    # Looks at what the step left (unmeasured): a tool that exits 0 without doing the work is failed.
    check: Check | None = None
    # Sets the step up (unmeasured) before its argv is built: a server to start, data to change.
    prepare: Callable[[Path, int], None] | None = None


@dataclass(frozen=True)
class Case:
    scenario: str
    tool: str
    steps: tuple[Step, ...]


@dataclass
class Measured:
    """All counted samples of one step (or of the whole case, as `TOTAL`)."""

    scenario: str
    tool: str
    step: str
    samples: list[Sample] = field(default_factory=list)

    @property
    def good(self) -> list[Sample]:
        """The repetitions that succeeded: the statistics are over these; failures are counted apart."""
        return [s for s in self.samples if s.ok]

    @property
    def ok(self) -> bool:
        return bool(self.good)

    @property
    def failures(self) -> int:
        return len(self.samples) - len(self.good)

    @property
    def error(self) -> str:
        return next((s.error for s in self.samples if not s.ok), "")

    def median(self, attr: str) -> float:
        return float(statistics.median(getattr(s, attr) for s in self.good))

    @property
    def seconds(self) -> float:
        return self.median("seconds")

    @property
    def spread(self) -> tuple[float, float]:
        values = [s.seconds for s in self.good]
        return min(values), max(values)


def _total(samples: list[Sample]) -> Sample:
    """A repetition's steps as one: times, requests and CPU add up; the peak is the highest one."""
    return Sample(
        seconds=sum(s.seconds for s in samples),
        peak_rss_mb=max(s.peak_rss_mb for s in samples),
        requests=sum(s.requests for s in samples),
        server_cpu_seconds=sum(s.server_cpu_seconds for s in samples),
        returncode=next((s.returncode for s in samples if not s.ok), 0),
        error=next((s.error for s in samples if not s.ok), ""),
        endpoints=dict(sum((Counter(s.endpoints) for s in samples), Counter())),
        by_server={role: dict(sum((Counter(s.by_server.get(role, {})) for s in samples), Counter()))
                   for role in dict.fromkeys(r for s in samples for r in s.by_server)},
    )


def run_case(case: Case, stage: Stage, work: Path, *, warmup: int, repeats: int,
             say: Callable[[str], None]) -> list[Measured]:
    """Warm up, then measure `repeats` repetitions; a failing step ends its repetition, not the case."""
    measured = {step.label: Measured(case.scenario, case.tool, step.label) for step in case.steps}
    totals = Measured(case.scenario, case.tool, TOTAL)
    for rep in range(-warmup, repeats):
        rep_dir = work / _slug(case.scenario) / _slug(case.tool) / (f"warmup{-rep}" if rep < 0 else f"rep{rep}")
        shutil.rmtree(rep_dir, ignore_errors=True)
        rep_dir.mkdir(parents=True)
        samples = []
        for step in case.steps:
            if step.prepare is not None:
                step.prepare(rep_dir, rep)
            env = {**os.environ, "MLFLOW_TRACKING_URI": step.tracking_uri, "PYTHONUNBUFFERED": "1"}
            sample = run_measured(step.argv(rep_dir, rep), env=env, log_path=rep_dir / f"{step.label}.log",
                                  logs=stage.access_logs(), server_pids=stage.server_pids(), cwd=rep_dir)
            ran = sample.ok
            if ran and step.check is not None:
                sample = _checked(sample, step.check(rep_dir, rep))
            samples.append(sample)
            if rep >= 0:
                measured[step.label].samples.append(sample)
            if not ran:
                break
        phase = "warm-up" if rep < 0 else f"run {rep + 1}/{repeats}"
        total = _total(samples)
        say(f"  {case.scenario:<22} {case.tool:<22} {phase:<10} {total.seconds:7.2f} s "
            f"{total.requests:6d} req {total.peak_rss_mb:6.0f} MB" + ("" if total.ok else f"  FAILED: {total.error}"))
        if rep >= 0:
            totals.samples.append(total)
    results = list(measured.values())
    if len(case.steps) > 1:
        results.append(totals)
    return results


def _checked(sample: Sample, problem: str | None) -> Sample:
    """The sample, failed with `problem` if its check found one (the next step still runs)."""
    return sample if problem is None else replace(sample, returncode=1, error=problem)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
