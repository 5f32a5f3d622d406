"""The report's arithmetic: medians over successful runs, ratios only where both sides ran."""

from __future__ import annotations

from bench.harness import TOTAL, Measured
from bench.measure import Sample
from bench.report import table, targets


def _sample(seconds: float, requests: int, ok: bool = True, artifacts: int = 0) -> Sample:
    endpoints = {"POST /api/2.0/mlflow/runs/create": requests - artifacts}
    if artifacts:
        endpoints["GET /api/2.0/mlflow-artifacts/artifacts/*"] = artifacts
    return Sample(seconds=seconds, peak_rss_mb=50.0, requests=requests, server_cpu_seconds=1.0,
                  returncode=0 if ok else 1, error="" if ok else "Error: boom", endpoints=endpoints)


def _case(tool: str, seconds: list[float], requests: int, artifacts: int = 0, failed: int = 0) -> list[Measured]:
    samples = [_sample(s, requests, artifacts=artifacts) for s in seconds]
    samples += [_sample(1.0, 3, ok=False) for _ in range(failed)]
    return [Measured("experiment", tool, TOTAL, samples)]


def _target(results: list[Measured], words: str) -> tuple[float | None, bool | None, str]:
    found = next(t for t in targets(results, ("experiment",)) if words in t.what)
    return found.measured, found.met, found.note


def test_speedup_and_request_ratio_use_medians_of_good_runs() -> None:
    results = _case("ferry", [2.0, 9.0, 3.0], 100, artifacts=40, failed=1) + \
        _case("mlflow-export-import", [30.0, 31.0, 29.0], 500, artifacts=40)
    assert _target(results, "speed-up")[:2] == (10.0, True)
    ratio, met, note = _target(results, "HTTP requests")
    assert (ratio, met) == (0.2, True)
    assert "without them ferry 60 / peer 460" in note
    assert "1/4: Error: boom" in table(results)


def test_a_side_that_never_succeeded_is_not_measured() -> None:
    results = _case("ferry", [], 0, failed=3) + _case("mlflow-export-import", [30.0], 500)
    assert _target(results, "speed-up")[:2] == (None, None)
    assert _target(results, "HTTP requests")[:2] == (None, None)
