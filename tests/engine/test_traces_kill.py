"""Trace imports that die: SIGKILLed ``import-traces`` runs of 400 traces, rerun, end with the source set.

A trace is written in several requests (its spans through OTLP, its info through StartTraceV3,
then each assessment), so a killed import can leave a trace with spans and no info, or with
some of its assessments. A rerun must finish such a trace, never write a second one: the
destination ends with every source trace id once, each with its spans and assessments.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from devstack.mlflow_server import MlflowServer
from devstack.trace_workload import SeededTraces, seed_traces
from ferry.engine import trace_import
from ferry.engine.trace_format import IdMaps
from ferry.engine.trace_import import SOURCE_TRACE_TAG
from ferry.engine.traces import _read_trace, export_traces
from ferry.tracking import TrackingClient
from ferry.tracking.traces import Traces
from tests.conftest import MLFLOW_WORKERS
from tests.engine.test_traces import _view, _without_ids

TRACES, SPANS = 400, 2  # enough for two kills inside the work; the full suite runs within its time
KILL_AT = (0.3, 0.7)  # shares of the traces in the destination, one killed run each
BIN = Path(sys.executable).parent
# Seeding 400 traces and importing them about twice over: minutes, more on a busy machine.
pytestmark = pytest.mark.timeout(2400)
START_TIMEOUT = 600.0


@pytest.fixture(scope="session")
def many_traces(mlflow_src: MlflowServer) -> SeededTraces:
    """400 traces of 2 spans, every tenth with a feedback and an expectation (about half a minute on an idle machine)."""
    return seed_traces(mlflow_src.uri, f"traces-kill-{os.getpid()}", TRACES, SPANS, assess_every=10)


@pytest.fixture(scope="module")
def exported_many(many_traces: SeededTraces, mlflow_src: MlflowServer,
                  tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("traces-kill") / "export"
    done = subprocess.run([str(BIN / "export-traces"), "--experiment-ids", many_traces.experiment_id,
                           "--output-dir", str(out), "--quiet"], env={**os.environ, "MLFLOW_TRACKING_URI": mlflow_src.uri},
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def fresh_dst(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A destination no other test writes to, where every source id is free: the path a first import takes."""
    server = MlflowServer(root=tmp_path_factory.mktemp("mlflow-killed-dst"), workers=MLFLOW_WORKERS)
    server.start(timeout=START_TIMEOUT)
    yield server
    server.stop()


def _tool(name: str, uri: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(BIN / name), *args], env={**os.environ, "MLFLOW_TRACKING_URI": uri},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _ids(client: TrackingClient, experiment_name: str) -> list[str]:
    """Every trace id of the experiment as the search lists them, duplicates and all."""
    exp = client.get_experiment_by_name(experiment_name)
    return [] if exp is None else [t["trace_id"] for t in Traces(client).search([exp["experiment_id"]])]


def test_killed_imports_rerun_to_exactly_the_source_traces(many_traces: SeededTraces, exported_many: Path,
                                                           mlflow_src: MlflowServer, fresh_dst: MlflowServer,
                                                           unique: str) -> None:
    """Each run is killed once the destination holds a share of the traces, a random moment later, so
    the kills land at different points inside a trace's requests."""
    src, dst = TrackingClient(mlflow_src.uri), TrackingClient(fresh_dst.uri)
    source_ids = sorted(_ids(src, many_traces.experiment_name))
    assert len(source_ids) == TRACES
    name, rng = f"traces-kill-killed-{unique}", random.Random(unique)
    import_args = ("--input-dir", str(exported_many), "--quiet", "--experiment-name", name)
    seen = []
    for share in KILL_AT:
        run = _tool("import-traces", fresh_dst.uri, *import_args)
        while run.poll() is None and len(_ids(dst, name)) < share * TRACES:
            time.sleep(0.3)
        time.sleep(rng.uniform(0, 0.5))
        run.send_signal(signal.SIGKILL)
        assert run.wait(timeout=60) == -signal.SIGKILL, f"the import ended before its kill at {share:.0%}"
        seen.append(len(_ids(dst, name)))
    assert seen == sorted(seen) and seen[-1] < TRACES, seen  # every kill fell inside the work
    began = time.monotonic()
    assert _tool("import-traces", fresh_dst.uri, *import_args).wait(timeout=900) == 0
    rerun = time.monotonic() - began

    dst_ids = _ids(dst, name)
    assert [i for i, n in Counter(dst_ids).items() if n > 1] == []
    assert sorted(dst_ids) == source_ids
    with ThreadPoolExecutor(4) as pool:
        pairs = list(pool.map(lambda t: (t, _view(src, t), _view(dst, t)), source_ids))
    assert sum(len(s["spans"]) for _, s, _ in pairs) == TRACES * SPANS
    assert sum(len(s["assessments"]) for _, s, _ in pairs) == many_traces.assessments
    for trace_id, src_view, dst_view in pairs:
        assert dst_view == src_view, trace_id
    print(f"\ntraces after each kill: {seen}; the last rerun took {rerun:.1f} s")


class _StopsAt(Traces):
    """The destination's real client, with the process 'killed' (an exception) before one request."""

    def __init__(self, client: TrackingClient, before: str) -> None:
        super().__init__(client)
        self.before = before

    def start_trace(self, trace_info: dict) -> dict:
        if self.before == "info":
            raise KeyboardInterrupt("stopped after the spans, before the trace info")
        return super().start_trace(trace_info)

    def create_assessment(self, trace_id: str, assessment: dict) -> dict:
        if self.before == "assessment":
            raise KeyboardInterrupt("stopped before the first assessment")
        return super().create_assessment(trace_id, assessment)


@pytest.fixture(scope="module")
def few_exported(mlflow_src: MlflowServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Four traces, each with a feedback and an expectation: one for each case below."""
    seeded = seed_traces(mlflow_src.uri, f"traces-stopped-{os.getpid()}", 4, SPANS, assess_every=1)
    out = tmp_path_factory.mktemp("traces-stopped") / "export"
    assert export_traces(TrackingClient(mlflow_src.uri), [seeded.experiment_id], out).phase == "Succeeded"
    return out, sorted(_ids(TrackingClient(mlflow_src.uri), seeded.experiment_name))


@pytest.mark.parametrize(("before", "ids_taken", "case"), [
    ("info", False, 0), ("assessment", False, 1), ("info", True, 2), ("assessment", True, 3)])
def test_an_import_stopped_inside_a_trace_finishes_that_trace(few_exported: tuple[Path, list[str]],
                                                              mlflow_src: MlflowServer, mlflow_dst: MlflowServer,
                                                              before: str, ids_taken: bool, case: int,
                                                              unique: str) -> None:
    """Where the source id is taken (an import into a second experiment) the rerun must find the
    spans-only trace the stopped import left under its new id: that id cannot be random."""
    root, trace_ids = few_exported
    src_id = trace_ids[case]
    src, client = TrackingClient(mlflow_src.uri), TrackingClient(mlflow_dst.uri)
    files = _read_trace(root / src_id)
    if ids_taken:
        first = client.get_or_create_experiment(f"traces-first-{unique}")["experiment_id"]
        assert trace_import.import_one(Traces(client), files, first, IdMaps({}, {})).trace_id == src_id
    exp_id = client.get_or_create_experiment(f"traces-stopped-{unique}")["experiment_id"]
    with pytest.raises(KeyboardInterrupt):
        trace_import.import_one(_StopsAt(client, before), files, exp_id, IdMaps({}, {}))
    result = trace_import.import_one(Traces(client), files, exp_id, IdMaps({}, {}))
    assert not result.failed

    [dst_id] = [t["trace_id"] for t in Traces(client).search([exp_id])]
    assert (dst_id != src_id) is ids_taken
    assert Traces(client).get(dst_id)["trace_info"]["tags"][SOURCE_TRACE_TAG] == src_id
    if ids_taken:
        assert _without_ids(_view(client, dst_id)) == _without_ids(_view(src, src_id))
    else:
        assert _view(client, dst_id) == _view(src, src_id)
    assert len(_view(client, dst_id)["assessments"]) == 2
