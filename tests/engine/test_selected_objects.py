"""``spec.objects.loggedModels`` and ``traces``: logged models and traces by id, through the service, both ways.

The source is seeded with MLflow's own APIs (``mlflow.pyfunc.log_model(name=...)``, ``@mlflow.trace``,
``mlflow.log_feedback``). The experiment is exported without its own logged models and traces, so
that what arrives came from the selection; the import renames the experiment, and the copies must
sit in the renamed experiment, on the imported run, linked as in the source.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import AssessmentSource

from devstack.fluent import point_fluent_api_at
from devstack.mlflow_server import MlflowServer
from ferry.engine.service import export_objects, import_objects
from ferry.options import ExportOptions, ImportOptions, ImportTarget, Renames, Selection
from tests.engine.logged_model_seed import SeededLoggedModels, seed_logged_models
from tests.engine.test_traces import _last_trace


@dataclass
class Seeded:
    models: SeededLoggedModels
    trace: str        # in the training run, linked to the model "echo", with assessments
    other: str        # in the experiment only, not selected


@mlflow.trace(name="answer")
def _answer(question: str) -> str:
    with mlflow.start_span("lookup") as span:
        span.set_inputs({"q": question})
        span.set_outputs({"hits": 2})
    return question.upper()


@pytest.fixture(scope="module")
def seeded(mlflow_src: MlflowServer) -> Seeded:
    models = seed_logged_models(mlflow_src.uri, f"selected-{os.getpid()}")
    point_fluent_api_at(mlflow_src.uri)
    mlflow.set_experiment(experiment_id=models.experiment_id)
    with mlflow.start_run(run_id=models.train_run):
        mlflow.set_active_model(model_id=models.model_ids["echo"])
        _answer("which model?")
        trace = _last_trace()
        mlflow.clear_active_model()
    mlflow.log_feedback(trace_id=trace, name="helpful", value=True, rationale="short and right",
                        source=AssessmentSource(source_type="HUMAN", source_id="reviewer"))
    _answer("not selected")
    return Seeded(models, trace, _last_trace())


def _model_view(client: MlflowClient, experiment_id: str) -> dict[str, Any]:
    runs = {r.info.run_id: r.info.run_name for r in client.search_runs([experiment_id])}
    return {m.name: {"params": m.params, "model_type": m.model_type, "status": str(m.status),
                     "run": runs.get(m.source_run_id or ""),
                     "tags": {k: v for k, v in m.tags.items() if not k.startswith(("mlflow.", "ferry."))},
                     "metrics": sorted((x.key, x.step, x.value, x.dataset_name) for x in m.metrics or [])}
            for m in client.search_logged_models([experiment_id])}


def _trace_view(client: MlflowClient, trace_id: str, experiment_id: str) -> dict[str, Any]:
    trace = client.get_trace(trace_id)
    runs = {r.info.run_id: r.info.run_name for r in client.search_runs([experiment_id])}
    models = {m.model_id: m.name for m in client.search_logged_models([experiment_id])}
    info = trace.info
    return {
        "experiment": info.experiment_id == experiment_id,
        "request_time": info.request_time, "state": str(info.state),
        "request": info.request_preview, "response": info.response_preview,
        "run": runs.get(info.trace_metadata.get("mlflow.sourceRun", "")),
        "model": models.get(info.trace_metadata.get("mlflow.modelId", "")),
        "spans": [(s.name, s.start_time_ns, s.end_time_ns, s.inputs, s.outputs) for s in trace.data.spans],
        "assessments": [(a.name, a.value, a.rationale, a.source.source_id) for a in info.assessments],
    }


def test_logged_models_and_traces_by_id(seeded: Seeded, mlflow_src: MlflowServer, mlflow_dst: MlflowServer,
                                        tmp_path: Path, unique: str) -> None:
    src_exp = seeded.models.experiment_name
    ids = seeded.models.model_ids
    out = tmp_path / "export"
    selection = Selection(experiments=[src_exp], logged_models=[ids["echo"], ids["second"], "m-missing"],
                          traces=[seeded.trace])
    exported = export_objects(mlflow_src.uri, out, selection,
                              ExportOptions(include_logged_models=False, include_traces=False))
    assert exported.phase == "PartiallyFailed"
    assert [f.split(":", 1)[0] for f in exported.failed] == ["logged model m-missing"]
    assert (exported.counts.logged_models, exported.counts.traces) == (2, 1)
    index = json.loads((out / "logged_models" / "logged_models.json").read_text())["mlflow"]["experiments"]
    assert index == [{"id": seeded.models.experiment_id, "name": src_exp, "logged_models": [ids["echo"], ids["second"]]}]
    traces = json.loads((out / "traces" / "traces.json").read_text())["mlflow"]["experiments"]
    assert traces == [{"id": seeded.models.experiment_id, "name": src_exp, "traces": [seeded.trace]}]
    assert not (out / seeded.models.experiment_id / "logged_models").exists()  # came from the selection only

    copy = f"copy-{unique}"
    target = ImportTarget(renames=Renames(experiments={src_exp: copy}))
    imported = import_objects(mlflow_dst.uri, out, ImportOptions(), target)
    assert imported.phase == "Succeeded", imported.failed
    assert (imported.counts.logged_models, imported.counts.traces) == (2, 1)

    src, dst = MlflowClient(mlflow_src.uri), MlflowClient(mlflow_dst.uri)
    dst_exp = dst.get_experiment_by_name(copy).experiment_id
    source_models = _model_view(src, seeded.models.experiment_id)
    assert _model_view(dst, dst_exp) == {k: v for k, v in source_models.items() if k in ("echo", "second")}
    copies = [t.info.trace_id for t in dst.search_traces(locations=[dst_exp])]
    assert len(copies) == 1
    source_trace = _trace_view(src, seeded.trace, seeded.models.experiment_id)
    assert source_trace["run"] == "train" and source_trace["model"] == "echo"  # the links to carry
    assert _trace_view(dst, copies[0], dst_exp) == source_trace

    again = import_objects(mlflow_dst.uri, out, ImportOptions(), target)
    assert (again.phase, again.counts.logged_models, again.counts.traces) == ("Succeeded", 0, 0)
    assert len(dst.search_logged_models([dst_exp])) == 2
    assert len(dst.search_traces(locations=[dst_exp])) == 1
