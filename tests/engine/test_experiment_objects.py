"""export-experiment / import-experiment carry the experiment's MLflow 3 objects: its logged models
(registered or not) and its traces, linked to the imported runs."""

from __future__ import annotations

from pathlib import Path

import mlflow

from devstack.fluent import point_fluent_api_at
from devstack.mlflow_server import MlflowServer
from ferry.engine.experiments import export_experiment, import_experiment
from ferry.engine.logged_models_bulk import imported_model_ids
from ferry.tracking import TrackingClient
from ferry.tracking.logged_models import LoggedModels
from ferry.tracking.traces import Traces
from tests.engine.logged_model_seed import seed_logged_models


def _trace_in_run(uri: str, experiment_id: str, run_name: str) -> str:
    point_fluent_api_at(uri)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name):
        with mlflow.start_span("answer") as span:
            span.set_inputs({"q": "2+2"})
            span.set_outputs({"a": 4})
        trace_id = span.trace_id
    mlflow.flush_trace_async_logging()  # the client sends traces in the background
    return trace_id


def test_an_experiment_carries_its_logged_models_and_traces(mlflow_src: MlflowServer, mlflow_dst: MlflowServer,
                                                            src_client: TrackingClient, dst_client: TrackingClient,
                                                            tmp_path: Path, unique: str) -> None:
    seeded = seed_logged_models(mlflow_src.uri, f"mlflow3-{unique}")
    trace_id = _trace_in_run(mlflow_src.uri, seeded.experiment_id, "traced")
    done = export_experiment(src_client, seeded.experiment_id, tmp_path)
    outcome = done.outcome()
    assert outcome.counts.logged_models == 3 and outcome.counts.traces == 1, outcome
    assert (tmp_path / "logged_models" / "logged_models.json").is_file()
    assert (tmp_path / "traces" / trace_id / "trace.json").is_file()

    name = f"mlflow3-copy-{unique}"
    imported = import_experiment(dst_client, tmp_path, name)
    result = imported.outcome()
    assert result.phase == "Succeeded", result.failed
    assert (result.counts.runs, result.counts.logged_models, result.counts.traces) == (3, 3, 1)
    runs = {r.src_run_id: r.dst_run_id for r in imported.runs}
    models = imported_model_ids(dst_client, imported.experiment_id)
    assert sorted(models) == sorted(seeded.model_ids.values())
    copy = LoggedModels(dst_client).get(models[seeded.model_ids["echo"]])
    assert copy["info"]["name"] == "echo" and copy["info"]["source_run_id"] == runs[seeded.train_run]
    (trace,) = list(Traces(dst_client).search([imported.experiment_id]))
    assert trace["trace_id"] == trace_id  # the destination keeps the source's trace id
    assert trace["trace_metadata"]["mlflow.sourceRun"] in set(runs.values())

    rerun = import_experiment(dst_client, tmp_path, name)
    again = rerun.outcome()
    assert again.phase == "Succeeded" and all(r.skipped for r in rerun.runs)
    assert (again.counts.logged_models, again.counts.traces) == (0, 0)  # nothing new
    assert len(list(Traces(dst_client).search([imported.experiment_id]))) == 1
