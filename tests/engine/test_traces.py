"""MLflow 3 traces: seeded through MLflow's own tracing API, exported, imported into a second server, compared."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
from mlflow.entities import AssessmentSource, SpanEvent, SpanType

from devstack.fluent import point_fluent_api_at
from devstack.mlflow_server import MlflowServer
from ferry.engine.trace_import import SOURCE_TRACE_TAG
from ferry.engine.traces import export_traces, import_traces
from ferry.tracking import TrackingClient
from ferry.tracking.traces import Traces
from tests.engine.conftest import Pair, on_pair
from tests.engine.peer_tools import peer

SERVER_TAGS = ("mlflow.artifactLocation",)  # and every ferry.* tag: the destination's own
HUMAN = AssessmentSource(source_type="HUMAN", source_id="reviewer@example.com")


@dataclass
class SeededTraces:
    experiment_id: str
    experiment_name: str
    run_id: str
    in_run: str       # nested spans, an event, an error span, assessments with an override
    failing: str      # a root span that raised: state ERROR
    later: str        # the newest trace, for the time filter; linked to a logged model
    model_id: str


@mlflow.trace(span_type=SpanType.TOOL, attributes={"tool.version": "2"})
def _lookup(n: int) -> int:
    return n * 2


@mlflow.trace(name="agent", span_type=SpanType.AGENT)
def _agent(question: str) -> int:
    with mlflow.start_span("llm", span_type=SpanType.LLM) as span:
        span.set_inputs({"question": question, "history": [1, 2]})
        span.set_attributes({"model": "m-1", "temperature": 0.5, "tokens": 12})
        span.add_event(SpanEvent("first-token", attributes={"latency_ms": 7}))
        span.set_outputs({"answer": question.upper()})
    try:
        with mlflow.start_span("flaky"):
            raise ValueError("flaky failed")
    except ValueError:
        pass
    return _lookup(len(question))


@mlflow.trace
def _failing(x: int) -> int:
    raise RuntimeError(f"no {x}")


def _last_trace() -> str:
    mlflow.flush_trace_async_logging()
    trace_id = mlflow.get_last_active_trace_id()
    assert trace_id
    return trace_id


@pytest.fixture(scope="module")
def seeded_traces(mlflow_src: MlflowServer) -> SeededTraces:
    return seed_traces(mlflow_src.uri)


def seed_traces(uri: str) -> SeededTraces:
    """A trace in a run with assessments, a failing one, and one of a logged model, by MLflow's fluent API."""
    point_fluent_api_at(uri)
    name = f"traces-{os.getpid()}"
    experiment_id = mlflow.set_experiment(name).experiment_id
    with mlflow.start_run() as run:
        _agent("why")
    in_run = _last_trace()
    llm_span = next(s for s in mlflow.get_trace(in_run).data.spans if s.name == "llm")
    first = mlflow.log_feedback(trace_id=in_run, name="correct", value=False, rationale="wrong unit",
                                source=HUMAN, metadata={"batch": "7"})
    mlflow.override_feedback(trace_id=in_run, assessment_id=first.assessment_id, value=True,
                             rationale="unit was right", source=HUMAN)
    mlflow.log_feedback(trace_id=in_run, name="fluency", value=0.75, span_id=llm_span.span_id,
                        source=AssessmentSource(source_type="LLM_JUDGE", source_id="judge-1"))
    mlflow.log_expectation(trace_id=in_run, name="expected", value={"answer": "WHY", "n": [1, 2]},
                           source=HUMAN, metadata={"from": "golden-set"})
    with pytest.raises(RuntimeError):
        _failing(3)
    failing = _last_trace()
    model_id = mlflow.set_active_model(name="agent-v1").model_id
    _agent("later")
    later = _last_trace()
    mlflow.clear_active_model()
    return SeededTraces(experiment_id, name, run.info.run_id, in_run, failing, later, model_id)


def _view(client: TrackingClient, trace_id: str, *, links: dict[str, dict[str, str]] | None = None) -> dict:
    """A trace's fields as the destination must show them; `links` maps the run and model links by key."""
    trace = Traces(client).get(trace_id)
    info = dict(trace["trace_info"])
    info.pop("trace_location")
    info["tags"] = {k: v for k, v in info["tags"].items() if k not in SERVER_TAGS and not k.startswith("ferry.")}
    metadata = dict(info["trace_metadata"])
    for key, mapping in (links or {}).items():
        if key in metadata:
            metadata[key] = mapping[metadata[key]]
    info["trace_metadata"] = metadata
    info["assessments"] = sorted(info.get("assessments", []), key=lambda a: a["create_time"])
    info["spans"] = sorted(trace["spans"], key=lambda s: s["start_time_unix_nano"])
    return info


def _without_ids(view: dict) -> dict:
    """A view with the trace's and assessments' ids replaced by their order: for traces given new ids."""
    view = dict(view)
    order = {a["assessment_id"]: n for n, a in enumerate(view["assessments"])}
    view["assessments"] = [{**a, "assessment_id": n, "trace_id": None,
                            **({"overrides": order[a["overrides"]]} if a.get("overrides") else {})}
                           for n, a in enumerate(view["assessments"])]
    view["spans"] = [{**s, "trace_id": None, "attributes": [x for x in s["attributes"]
                                                          if x["key"] != "mlflow.traceRequestId"]}
                     for s in view["spans"]]
    view.pop("trace_id")
    return view


def _trace_ids(client: TrackingClient, experiment_name: str) -> list[str]:
    exp = client.get_experiment_by_name(experiment_name)
    assert exp is not None
    return sorted(t["trace_id"] for t in Traces(client).search([exp["experiment_id"]]))


@pytest.fixture(scope="module")
def exported(seeded_traces: SeededTraces, src_client: TrackingClient, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_seeded(seeded_traces, src_client, tmp_path_factory)


@pytest.fixture
def pair_traces(pair: Pair, request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> tuple[SeededTraces, Path]:
    """The seeded traces and their export, on the pair's source."""
    seeded = on_pair(pair, request, "seeded_traces", "traces", lambda: seed_traces(pair.src.uri))
    return seeded, on_pair(pair, request, "exported", "traces-export",
                           lambda: export_seeded(seeded, pair.src_client, tmp_path_factory))


def export_seeded(seeded_traces: SeededTraces, src_client: TrackingClient,
                  tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("traces") / "out"
    outcome = export_traces(src_client, [seeded_traces.experiment_id], out)
    assert outcome.phase == "Succeeded", outcome.failed
    assert outcome.counts.traces == 3
    return out


def test_seed_has_what_the_tests_compare(seeded_traces: SeededTraces, src_client: TrackingClient) -> None:
    view = _view(src_client, seeded_traces.in_run)
    assert [s["name"] for s in view["spans"]] == ["agent", "llm", "flaky", "_lookup"]
    assert {s["name"]: s["status"]["code"] for s in view["spans"]}["flaky"] == "STATUS_CODE_ERROR"
    assert [a["valid"] for a in view["assessments"]][:2] == [False, True]
    assert view["trace_metadata"]["mlflow.sourceRun"] == seeded_traces.run_id
    assert _view(src_client, seeded_traces.failing)["state"] == "ERROR"


def test_export_writes_the_peer_layout(seeded_traces: SeededTraces, exported: Path) -> None:
    import json

    index = json.loads((exported / "traces.json").read_text())
    [entry] = index["mlflow"]["experiments"]
    assert entry["name"] == seeded_traces.experiment_name
    assert sorted(entry["traces"]) == sorted([seeded_traces.in_run, seeded_traces.failing, seeded_traces.later])
    assert index["info"]["num_ok_traces"] == 3
    trace = json.loads((exported / seeded_traces.in_run / "trace.json").read_text())["mlflow"]
    assert trace["info"]["trace_id"] == seeded_traces.in_run
    assert [s["name"] for s in trace["data"]] == ["agent", "llm", "flaky", "_lookup"]
    spans = json.loads((exported / seeded_traces.in_run / "artifacts" / "traces.json").read_text())["spans"]
    assert len(spans) == 4 and all("start_time_unix_nano" in s for s in spans)


def test_import_keeps_ids_and_every_field_and_runs_once(pair: Pair, pair_traces: tuple[SeededTraces, Path],
                                                        unique: str) -> None:
    (seeded_traces, exported), src_client, dst_client = pair_traces, pair.src_client, pair.dst_client
    name = f"traces-dst-{unique}"
    dst_exp = dst_client.get_or_create_experiment(name)["experiment_id"]
    dst_run = dst_client.create_run(dst_exp)["info"]["run_id"]
    dst_model = mlflow.MlflowClient(dst_client.uri).create_logged_model(dst_exp, name="agent-v1").model_id
    run_ids, model_ids = {seeded_traces.run_id: dst_run}, {seeded_traces.model_id: dst_model}
    links = {"mlflow.sourceRun": run_ids, "mlflow.modelId": model_ids}

    outcome = import_traces(dst_client, exported, experiment_name=name, run_ids=run_ids, model_ids=model_ids)
    assert outcome.phase == "Succeeded", outcome.failed
    assert outcome.counts.traces == 3
    expected = sorted([seeded_traces.in_run, seeded_traces.failing, seeded_traces.later])
    assert _trace_ids(dst_client, name) == expected  # ids kept
    for trace_id in expected:
        assert _view(dst_client, trace_id) == _view(src_client, trace_id, links=links), trace_id
    assert Traces(dst_client).get(seeded_traces.later)["trace_info"]["trace_metadata"]["mlflow.modelId"] == dst_model
    linked = Traces(dst_client).search([dst_exp], filter=f"attribute.run_id = '{dst_run}'")
    assert [t["trace_id"] for t in linked] == [seeded_traces.in_run]

    again = import_traces(dst_client, exported, experiment_name=name, run_ids=run_ids, model_ids=model_ids)
    assert again.phase == "Succeeded" and "0 traces, 3 already imported" in again.message
    assert again.counts.traces == 0
    assert _trace_ids(dst_client, name) == expected
    for trace_id in expected:  # nothing added to the traces either (assessments)
        assert _view(dst_client, trace_id) == _view(src_client, trace_id, links=links), trace_id


def test_import_where_the_ids_are_taken_maps_them(seeded_traces: SeededTraces, exported: Path,
                                                  src_client: TrackingClient, dst_client: TrackingClient,
                                                  unique: str) -> None:
    first, second = f"traces-a-{unique}", f"traces-b-{unique}"
    assert import_traces(dst_client, exported, experiment_name=first).phase == "Succeeded"
    outcome = import_traces(dst_client, exported, experiment_name=second)
    assert outcome.phase == "Succeeded", outcome.failed
    mapped = _trace_ids(dst_client, second)
    assert len(mapped) == 3 and not set(mapped) & {seeded_traces.in_run, seeded_traces.failing, seeded_traces.later}
    traces = Traces(dst_client)
    by_source = {traces.get(t)["trace_info"]["tags"][SOURCE_TRACE_TAG]: t for t in mapped}
    for src_id, dst_id in by_source.items():
        src = _without_ids(_view(src_client, src_id))
        unlinked = {k: src["trace_metadata"].pop(k) for k in ("mlflow.sourceRun", "mlflow.modelId")
                    if k in src["trace_metadata"]}  # no mapping given: not linked, the source id kept as a tag
        assert _without_ids(_view(dst_client, dst_id)) == src, src_id
        tags = traces.get(dst_id)["trace_info"]["tags"]
        kept_as = {"mlflow.sourceRun": "ferry.source.run_id", "mlflow.modelId": "ferry.source.model_id"}
        assert {key: tags[kept_as[key]] for key in unlinked} == unlinked

    again = import_traces(dst_client, exported, experiment_name=second)
    assert "0 traces, 3 already imported" in again.message
    assert _trace_ids(dst_client, second) == mapped
    assert sum(len(traces.get(t)["trace_info"].get("assessments", [])) for t in mapped) == 4


def test_traces_since_exports_only_newer_traces(seeded_traces: SeededTraces, src_client: TrackingClient,
                                                tmp_path: Path) -> None:
    later = Traces(src_client).get(seeded_traces.later)["trace_info"]
    from ferry.engine.trace_format import millis

    since = millis(later["request_time"])
    outcome = export_traces(src_client, seeded_traces.experiment_name, tmp_path / "since", traces_since=since)
    assert outcome.phase == "Succeeded"
    assert sorted(p.name for p in (tmp_path / "since").iterdir() if p.is_dir()) == [seeded_traces.later]


def test_commands_round_trip(seeded_traces: SeededTraces, mlflow_src: MlflowServer, mlflow_dst: MlflowServer,
                             dst_client: TrackingClient, tmp_path: Path, unique: str) -> None:
    bin_dir = Path(sys.executable).parent

    def run(tool: str, uri: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(bin_dir / tool), *args], env={**os.environ, "MLFLOW_TRACKING_URI": uri},
                              capture_output=True, text=True, timeout=300)

    done = run("export-trace", mlflow_src.uri, "--request-id", seeded_traces.failing, "--output-dir",
               str(tmp_path / "one"))
    assert done.returncode == 0, done.stderr
    name = f"traces-cli-{unique}"
    done = run("import-trace", mlflow_dst.uri, "--input-dir", str(tmp_path / "one"), "--experiment-name", name)
    assert done.returncode == 0, done.stderr
    assert len(_trace_ids(dst_client, name)) == 1
    done = run("export-traces", mlflow_src.uri, "--experiment-ids", seeded_traces.experiment_id, "--output-dir",
               str(tmp_path / "all"), "--quiet")
    assert done.returncode == 0, done.stderr
    done = run("import-traces", mlflow_dst.uri, "--input-dir", str(tmp_path / "all"), "--experiment-name", name,
               "--quiet")
    assert done.returncode == 0, done.stderr
    assert len(_trace_ids(dst_client, name)) == 3
    bad = run("import-traces", mlflow_dst.uri, "--input-dir", str(tmp_path / "missing"))
    assert bad.returncode != 0 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


@pytest.mark.peer
def test_peer_export_traces_imported_by_us(seeded_traces: SeededTraces, mlflow_src: MlflowServer,
                                           src_client: TrackingClient, dst_client: TrackingClient, tmp_path: Path,
                                           unique: str) -> None:
    """The peer writes span data only where MLflow also put it in the artifacts (an ERROR trace); we carry
    what it wrote, and list each trace whose spans it left out."""
    out = tmp_path / "peer"
    peer("export-traces", mlflow_src.uri, "--experiment-ids", seeded_traces.experiment_id, "--output-dir", str(out))
    without_spans = sorted(p.name for p in out.iterdir()
                           if p.is_dir() and not (p / "artifacts" / "traces.json").is_file())
    assert without_spans  # the peer's loss on MLflow 3: spans kept in the tracking store are not exported
    name = f"traces-peer-{unique}"
    outcome = import_traces(dst_client, out, experiment_name=name)
    assert outcome.phase == "PartiallyFailed"
    assert sorted(f.split()[1].rstrip(":") for f in outcome.failed) == without_spans
    assert all("no span data" in f for f in outcome.failed)
    dst_ids = _trace_ids(dst_client, name)
    assert len(dst_ids) == 3
    for trace_id in dst_ids:
        src_id = Traces(dst_client).get(trace_id)["trace_info"]["tags"][SOURCE_TRACE_TAG]
        dst, src = _without_ids(_view(dst_client, trace_id)), _without_ids(_view(src_client, src_id))
        src["trace_metadata"].pop("mlflow.sourceRun", None)
        src["trace_metadata"].pop("mlflow.modelId", None)
        if src_id in without_spans:
            assert [s["name"] for s in dst.pop("spans")] == [s["name"] for s in src.pop("spans")]
        assert dst == src, src_id
    again = import_traces(dst_client, out, experiment_name=name)
    assert "0 traces, 3 already imported" in again.message


@pytest.mark.peer
def test_peer_import_traces_of_our_export_crashes_on_mlflow_3(exported: Path, mlflow_dst: MlflowServer,
                                                              dst_client: TrackingClient) -> None:
    """mlflow-export-import 1.2.1 calls SpanStatusCode.from_proto_status_code, gone in MLflow 3.17, and exits 0."""
    done = peer("import-traces", mlflow_dst.uri, "--input-dir", str(exported))
    assert "from_proto_status_code" in done.stderr + done.stdout


def test_an_mlflow_2_server_has_no_traces_to_export_and_takes_none(mlflow2_src: MlflowServer, exported: Path,
                                                                   tmp_path: Path) -> None:
    """MLflow 2 answers 404 for the MLflow 3 trace API: nothing to export, and each trace listed as not imported."""
    client = TrackingClient(mlflow2_src.uri)
    outcome = export_traces(client, "all", tmp_path / "none")
    assert outcome.phase == "Succeeded" and outcome.message.startswith("exported 0 traces")

    refused = import_traces(client, exported, experiment_name="traces-into-mlflow2")
    assert refused.phase == "Failed"
    assert len(refused.failed) == 3 and all("MLflow 3.4 or later" in f for f in refused.failed)
