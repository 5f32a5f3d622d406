"""A whole tracking server seeded through MLflow's own client, and a view of everything on a server.

`seed_server` puts one of each kind on a fresh server: a registered model whose versions (stages,
an alias) are runs of one experiment that also holds a run no version points at, the rich
experiment of `tests.engine.seed`, logged models from ``mlflow.pyfunc.log_model(name=...)``, a
trace with assessments, a prompt of two versions with an alias, and an evaluation dataset.
`server_view` reads every object of a server back, without ids, so that a whole-server copy is
compared with its source in one assertion (by `devstack.compare.differences`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import AssessmentSource

from devstack.compare import experiment_snapshot, model_snapshot
from devstack.fluent import point_fluent_api_at
from ferry.tracking import TrackingClient, tags_of
from ferry.tracking.datasets import Datasets
from ferry.tracking.logged_models import LoggedModels
from ferry.tracking.prompts import Prompts
from ferry.tracking.traces import Traces
from ferry.tracking.webhooks import Webhooks
from tests.engine.evaluation_dataset_seed import dataset_view, seed_dataset
from tests.engine.logged_model_seed import seed_logged_models
from tests.engine.prompt_seed import prompt_view
from tests.engine.registry_compare import model_view
from tests.engine.registry_seed import model_files
from tests.engine.seed import T0, make_run, seed_experiment

STAGES = {"1": "Archived", "2": "Production", "3": "Staging"}
ALIASES = {"champion": "2"}
PROMPT_ALIASES = {"live": 1}
REVIEWER = AssessmentSource(source_type="HUMAN", source_id="reviewer@example.com")


@dataclass
class SeededServer:
    uri: str
    model: str
    model_experiment: str
    experiment: str
    agents: str  # logged models and the trace
    prompt: str
    dataset: str
    trace_id: str


def seed_registry(uri: str, name: str, scratch: Path) -> str:
    """Model `name` of three versions (every stage but None, alias champion) on runs of one experiment.

    The experiment also holds a run without a version: export-all exports all of its runs. Returns
    the experiment's name. Uses only what MLflow 2.22 has too.
    """
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = f"{name}-training"
    exp_id = client.create_experiment(experiment, tags={"purpose": "training"})
    client.create_registered_model(name, tags={"owner": "ml-team"}, description=f"The {name} model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # stages are deprecated, still served
        for i in range(1, 4):
            run_id = make_run(client, exp_id, f"train-{i}", 10_000 * i, tags={"attempt": str(i)})
            client.log_param(run_id, "version", str(i))
            for step in range(5):
                client.log_metric(run_id, "acc", i / 10 + step / 100, timestamp=T0 + 10_000 * i + step, step=step)
            client.log_artifacts(run_id, str(model_files(scratch, i)), "model")
            version = client.create_model_version(name, f"{client.get_run(run_id).info.artifact_uri}/model", run_id,
                                                  tags={"n": str(i)}, description=f"version {i}")
            if version.version in STAGES:
                client.transition_model_version_stage(name, version.version, STAGES[version.version])
    for alias, version_number in ALIASES.items():
        client.set_registered_model_alias(name, alias, version_number)
    spare = make_run(client, exp_id, "exploration", 50_000, tags={"kind": "no version"})
    client.log_metric(spare, "acc", 0.01, timestamp=T0 + 50_001, step=0)
    return experiment


def seed_server(uri: str, scratch: Path, prefix: str = "all") -> SeededServer:
    """One of every kind of object export-all carries, on the MLflow 3 server at `uri`."""
    model = f"{prefix}-wine"
    model_experiment = seed_registry(uri, model, scratch / "registry")
    experiment = f"{prefix}-runs"
    seed_experiment(uri, experiment, scratch / "runs")
    agents = seed_logged_models(uri, f"{prefix}-agents")
    trace_id = _trace_with_assessment(uri, agents.experiment_id)
    prompt = f"{prefix}-greeting"
    mlflow.set_tracking_uri(uri)
    for version in (1, 2):
        mlflow.genai.register_prompt(name=prompt, template=f"v{version}: hello {{{{name}}}}",
                                     commit_message=f"change {version}", tags={"step": str(version)})
    for alias, version in PROMPT_ALIASES.items():
        mlflow.genai.set_prompt_alias(prompt, alias, version)
    dataset = f"{prefix}-qa"
    seed_dataset(uri, dataset, [experiment])
    return SeededServer(uri, model, model_experiment, experiment, agents.experiment_name, prompt, dataset, trace_id)


def _trace_with_assessment(uri: str, experiment_id: str) -> str:
    point_fluent_api_at(uri)
    with mlflow.start_run(experiment_id=experiment_id, run_name="traced"):
        with mlflow.start_span("answer") as span:
            span.set_inputs({"q": "2+2"})
            span.set_outputs({"a": 4})
        trace_id = span.trace_id
    mlflow.flush_trace_async_logging()
    mlflow.log_feedback(trace_id=trace_id, name="correct", value=True, rationale="it is 4", source=REVIEWER)
    mlflow.log_expectation(trace_id=trace_id, name="expected", value={"a": 4}, source=REVIEWER)
    return trace_id


# -- the view --------------------------------------------------------------------------------------


def server_view(uri: str, *, mlflow3: bool = True) -> dict[str, Any]:
    """Every experiment, registered model, logged model, trace, prompt and dataset of the server at `uri`.

    Webhooks by name, without ids or times.
    Experiments and models by name (runs by run name, as `devstack.compare` keys them); the MLflow 3
    objects by their experiment's name (or their own name). Without `mlflow3` (an MLflow 2 server)
    only experiments and models.
    """
    client = TrackingClient(uri)
    mlflow_client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiments = {e["name"]: str(e["experiment_id"]) for e in client.search_experiments()}
    models = sorted(m["name"] for m in client.search_registered_models())
    view: dict[str, Any] = {
        "experiments": {name: experiment_snapshot(mlflow_client, name) for name in sorted(experiments)},
        "runs": {name: len(list(client.search_runs([exp_id]))) for name, exp_id in
                 sorted(experiments.items())},  # snapshots key runs by name: a duplicate would hide there
        "models": {name: {**(model_snapshot(mlflow_client, name) or {}), "registry": model_view(client, name)}
                   for name in models},
    }
    if not mlflow3:
        return view
    view["logged_models"] = {name: _logged_models(client, exp_id) for name, exp_id in sorted(experiments.items())}
    view["traces"] = {name: _traces(client, exp_id) for name, exp_id in sorted(experiments.items())}
    view["prompts"] = {name: prompt_view(uri, name) for name in Prompts(client).names()}
    view["datasets"] = sorted((dataset_view(client, d["dataset_id"]) for d in Datasets(client).search()),
                              key=lambda d: d["name"])
    view["webhooks"] = sorted(({k: w.get(k) for k in ("name", "url", "events", "description", "status")}
                               for w in Webhooks(client).list()), key=lambda w: str(w["name"]))
    return view


def _run_name(client: TrackingClient, run_id: str | None) -> str | None:
    return client.get_run(run_id)["info"].get("run_name") if run_id else None


def _logged_models(client: TrackingClient, experiment_id: str) -> list[dict[str, Any]]:
    found = []
    for model in LoggedModels(client).search([experiment_id]):
        info, data = model["info"], model.get("data") or {}
        found.append({
            "name": info["name"], "model_type": info.get("model_type"), "status": info["status"],
            "params": {p["key"]: p["value"] for p in data.get("params") or []},
            "tags": {k: v for k, v in tags_of(info).items() if not k.startswith("ferry.")},
            "metrics": sorted((m["key"], m["value"], m["step"], _run_name(client, m.get("run_id")))
                              for m in data.get("metrics") or []),
            "source_run": _run_name(client, info.get("source_run_id")),
        })
    return sorted(found, key=lambda m: m["name"])


def _traces(client: TrackingClient, experiment_id: str) -> dict[str, Any]:
    found = {}
    for summary in Traces(client).search([experiment_id]):
        trace = Traces(client).get(summary["trace_id"])
        info = trace["trace_info"]
        found[info["trace_id"]] = {
            "state": info.get("state"), "request_time": info.get("request_time"),
            "request_preview": info.get("request_preview"), "response_preview": info.get("response_preview"),
            "source_run": _run_name(client, info.get("trace_metadata", {}).get("mlflow.sourceRun")),
            "assessments": sorted((a["assessment_name"], str(a.get("feedback") or a.get("expectation")),
                                   a.get("rationale"), a["source"]["source_id"])
                                  for a in info.get("assessments") or []),
            "spans": sorted(s["name"] for s in trace["spans"]),
        }
    return found
