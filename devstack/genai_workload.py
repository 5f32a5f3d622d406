"""The MLflow 3 objects of the demo's source server, seeded with MLflow's own client APIs.

Beside the runs and registered model of `devstack.workload`, a migration from MLflow 3 carries
the GenAI objects: logged models (``mlflow.pyfunc.log_model(name=...)``), traces with
assessments, prompts with aliases and evaluation datasets. `seed_genai` puts one of each kind
(a few of some) into an experiment, the way a user's code creates them, so that the demo's export
and import show them travelling. Names are fixed: the examples name the prompt and the dataset.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import AssessmentSource, SpanType

from devstack.fluent import point_fluent_api_at

PROMPT = "churn-explainer"            # examples/mlflow-export.yaml selects it
PROMPT_ALIAS = "production"
DATASET = "churn-eval"                # examples/mlflow-export.yaml selects it
TRACED_QUESTIONS = ("Why did customer 17 churn?", "Which plan keeps customers longest?", "Summarise Q3 churn.")


class ChurnExplainer(mlflow.pyfunc.PythonModel):
    """A stand-in agent: answers with the question's length (the demo needs a model, not a good one)."""

    def predict(self, context: Any, model_input: list[str]) -> list[int]:
        return [len(q) for q in model_input]


@dataclass
class SeededGenai:
    """What `seed_genai` created, by name or id."""

    experiment: str
    logged_models: list[str] = field(default_factory=list)   # model ids
    traces: list[str] = field(default_factory=list)          # trace ids
    prompt: str = PROMPT
    prompt_versions: int = 0
    dataset: str = DATASET
    records: int = 0


@mlflow.trace(span_type=SpanType.RETRIEVER)
def _lookup(question: str) -> list[str]:
    return [f"account history for: {question}", "plan: basic"]


@mlflow.trace(name="explain", span_type=SpanType.AGENT)
def _explain(question: str) -> str:
    context = _lookup(question)
    with mlflow.start_span("llm", span_type=SpanType.LLM) as span:
        span.set_inputs({"messages": [{"role": "user", "content": question}], "context": context})
        answer = f"{len(context)} signals point at price sensitivity."
        span.set_outputs({"answer": answer})
        span.set_attribute("model", "demo-llm")
    return answer


def seed_genai(uri: str, experiment_name: str) -> SeededGenai:
    """One experiment's MLflow 3 objects (the experiment must exist), and a prompt and a dataset."""
    previous = mlflow.get_tracking_uri()
    point_fluent_api_at(uri)
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.ERROR)  # MLflow's notices (pickled model, active model, prompt waits) are not the demo's
    try:
        with warnings.catch_warnings(), _env(MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT="true"):
            warnings.simplefilter("ignore")
            return _seed(MlflowClient(uri), experiment_name)
    finally:
        logger.setLevel(level)
        mlflow.set_tracking_uri(previous)


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _seed(client: MlflowClient, experiment_name: str) -> SeededGenai:
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        raise ValueError(f"experiment '{experiment_name}' does not exist at {client.tracking_uri}")
    seeded = SeededGenai(experiment_name)
    mlflow.set_experiment(experiment_id=experiment.experiment_id)
    with mlflow.start_run(run_name="train-explainer"):
        mlflow.log_param("prompt", f"prompts:/{PROMPT}@{PROMPT_ALIAS}")
        model = mlflow.pyfunc.log_model(name="churn-explainer", python_model=ChurnExplainer(),
                                        params={"temperature": "0.2", "max_tokens": 256}, model_type="agent",
                                        pip_requirements=["mlflow"])
        seeded.logged_models.append(model.model_id)
        for step, value in enumerate((0.61, 0.72, 0.78)):
            mlflow.log_metric("answer_accuracy", value, step=step, model_id=model.model_id)
        mlflow.set_logged_model_tags(model.model_id, {"team": "retention", "stage": "candidate"})
        mlflow.set_active_model(model_id=model.model_id)
        for question in TRACED_QUESTIONS[:2]:
            _explain(question)
            seeded.traces.append(_last_trace())
        mlflow.clear_active_model()
    _explain(TRACED_QUESTIONS[2])  # outside any run: a trace of the experiment only
    seeded.traces.append(_last_trace())
    first = seeded.traces[0]
    mlflow.log_feedback(trace_id=first, name="helpful", value=True, rationale="names the cause",
                        source=AssessmentSource(source_type="HUMAN", source_id="analyst@example.com"))
    mlflow.log_feedback(trace_id=first, name="groundedness", value=0.8,
                        source=AssessmentSource(source_type="LLM_JUDGE", source_id="demo-judge"))
    mlflow.log_expectation(trace_id=first, name="expected_answer", value="price increase in March",
                           source=AssessmentSource(source_type="HUMAN", source_id="analyst@example.com"))
    for version, template in enumerate((
            "Explain why {{customer}} churned.",
            "You are a retention analyst. Explain in two sentences why {{customer}} churned, citing {{signals}}."), 1):
        mlflow.genai.register_prompt(name=PROMPT, template=template, commit_message=f"revision {version}",
                                     tags={"author": "retention-team"})
        seeded.prompt_versions = version
    mlflow.genai.set_prompt_alias(PROMPT, PROMPT_ALIAS, seeded.prompt_versions)
    records = [
        {"inputs": {"question": q}, "expectations": {"mentions_price": i % 2 == 0}, "tags": {"source": "support"}}
        for i, q in enumerate(TRACED_QUESTIONS)
    ]
    dataset = mlflow.genai.datasets.create_dataset(name=DATASET, experiment_id=[experiment.experiment_id],
                                                   tags={"team": "retention"})
    dataset.merge_records(records)
    seeded.records = len(records)
    return seeded


def _last_trace() -> str:
    mlflow.flush_trace_async_logging()
    trace_id = mlflow.get_last_active_trace_id()
    if not trace_id:
        raise RuntimeError("MLflow recorded no trace")
    return trace_id
