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


def _mirror_step(step: str, seconds: float, src: int, dst: dict[str, int]) -> Measured:
    by_server = {"mirror-src": {"POST /api/2.0/mlflow/runs/search": src}, "mirror-dst-0": dst}
    sample = Sample(seconds=seconds, peak_rss_mb=50.0, requests=src + sum(dst.values()), server_cpu_seconds=1.0,
                    returncode=0, by_server=by_server)
    return Measured("mirror", "ferry mirror", step, [sample])


def _mirror_targets(unchanged_dst: dict[str, int]) -> dict[str, tuple[float | None, bool | None]]:
    full = {"POST /api/2.0/mlflow/runs/create": 100, "POST /api/2.0/mlflow/runs/log-batch": 100,
            "POST /api/2.0/mlflow/runs/search": 10}
    results = [
        _mirror_step("full copy", 40.0, 190, full),
        _mirror_step("no-change sync", 4.0, 8, unchanged_dst),
        _mirror_step("small-change sync", 8.0, 30, {"POST /api/2.0/mlflow/runs/create": 10,
                                                    "POST /api/2.0/mlflow/runs/log-batch": 10}),
        Measured("mirror", "ferry export + import", TOTAL, [_sample(80.0, 1000)]),
    ]
    return {t.what: (t.measured, t.met) for t in targets(results, ("mirror",))}


def test_mirror_syncs_are_reported_against_its_full_copy_and_the_export_import() -> None:
    found = _mirror_targets({"POST /api/2.0/mlflow/runs/search": 2})
    assert found["mirror: no-change sync / full copy, HTTP requests"] == (10 / 400, None)
    assert found["mirror: no-change sync / full copy, time"] == (0.1, None)
    assert found["mirror: no-change sync, write requests to the destination"] == (0.0, True)
    assert found["mirror: small-change sync / full copy, HTTP requests"] == (50 / 400, None)
    assert found["mirror: full copy / ferry export + import of the same experiment, time"] == (0.5, None)
    assert found["mirror: full copy / ferry export + import of the same experiment, HTTP requests"] == (0.4, None)
    assert found["mirror: small change carried by a sync, speed-up over a new export + import"] == (10.0, None)
    assert found["mirror: mlflow-export-import export + import of the same experiment"] == (None, None)


def test_a_no_change_sync_that_writes_misses_its_target() -> None:
    found = _mirror_targets({"POST /api/2.0/mlflow/runs/search": 2, "POST /api/2.0/mlflow/runs/delete-tag": 1})
    assert found["mirror: no-change sync, write requests to the destination"] == (1.0, False)
