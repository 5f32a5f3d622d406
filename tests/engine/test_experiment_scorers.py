"""An experiment's scorers travel with the experiment: export-experiment(s), export-models and the resources.

The source session server accepts custom ``@scorer`` code and the destination refuses it, as MLflow
servers do by default (``tests/conftest.py``): a refused scorer is a failed line naming it.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.genai.judges import make_judge
from mlflow.genai.scorers import Guidelines, scorer

from devstack.mlflow_server import MlflowServer
from ferry.engine.experiments import export_experiment, import_experiment
from ferry.engine.scorers import SCORERS_FILE
from ferry.engine.service import export_objects, import_objects
from ferry.options import ExportOptions, ImportOptions, Selection
from ferry.tracking import TrackingClient
from ferry.tracking.scorers import Scorers


@scorer
def exact_match(outputs: str, expectations: dict) -> bool:
    return outputs == expectations["expected_response"]


def seed(uri: str, name: str, *, custom: bool = False) -> str:
    """An experiment with one run, a two-version guidelines scorer and a judge (and a custom scorer)."""
    mlflow.set_tracking_uri(uri)
    exp_id = mlflow.set_experiment(name).experiment_id
    client = MlflowClient(uri)
    client.set_terminated(client.create_run(exp_id, run_name="eval").info.run_id)
    Guidelines(name="polite", guidelines=["Be polite"]).register(name="polite", experiment_id=exp_id)
    Guidelines(name="polite", guidelines=["Be polite", "Be brief"]).register(name="polite", experiment_id=exp_id)
    make_judge(name="correct", instructions="Is {{ outputs }} a correct answer to {{ inputs }}?",
               model="openai:/gpt-4o-mini", feedback_value_type=bool).register(name="correct", experiment_id=exp_id)
    if custom:
        exact_match.register(name="exact", experiment_id=exp_id)
    return exp_id


def versions(client: TrackingClient, experiment: str) -> dict[str, list[tuple[int, str]]]:
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None
    api = Scorers(client)
    return {s["scorer_name"]: [(v["scorer_version"], v["serialized_scorer"])
                               for v in api.versions(exp["experiment_id"], s["scorer_name"])]
            for s in api.latest(exp["experiment_id"])}


def test_the_resources_carry_an_experiments_scorers_and_a_rerun_registers_none(
        mlflow_src: MlflowServer, mlflow_dst: MlflowServer, src_client: TrackingClient,
        dst_client: TrackingClient, unique: str, tmp_path: Path) -> None:
    name = f"scored-exp-{unique}"
    exp_id = seed(mlflow_src.uri, name)
    out = export_objects(mlflow_src.uri, tmp_path, Selection(experiments=[name]), ExportOptions())
    assert out.phase == "Succeeded", out.failed
    assert (out.counts.experiments, out.counts.runs, out.counts.scorers) == (1, 1, 2)
    doc = json.loads((tmp_path / exp_id / SCORERS_FILE).read_text())["mlflow"]
    assert [(s["name"], len(s["versions"])) for s in doc["scorers"]] == [("correct", 1), ("polite", 2)]

    first = import_objects(mlflow_dst.uri, tmp_path, ImportOptions())
    assert first.phase == "Succeeded", first.failed
    assert (first.counts.runs, first.counts.scorers) == (1, 2)
    assert versions(dst_client, name) == versions(src_client, name)

    again = import_objects(mlflow_dst.uri, tmp_path, ImportOptions())
    assert again.phase == "Succeeded", again.failed
    assert versions(dst_client, name) == versions(src_client, name)  # no version registered twice


def test_a_scorer_the_destination_refuses_is_a_failed_line_naming_it(
        mlflow_src: MlflowServer, src_client: TrackingClient, dst_client: TrackingClient, unique: str,
        tmp_path: Path) -> None:
    name = f"custom-scored-{unique}"
    seed(mlflow_src.uri, name, custom=True)
    exported = export_experiment(src_client, name, tmp_path)
    assert exported.outcome().phase == "Succeeded", exported.failed
    assert exported.counts.scorers == 3

    imported = import_experiment(dst_client, tmp_path, None)
    outcome = imported.outcome()
    assert outcome.phase == "PartiallyFailed"
    [failure] = outcome.failed
    assert failure.startswith(f"scorer 'exact' of experiment '{name}': ") and "INVALID_PARAMETER_VALUE" in failure
    assert (outcome.counts.runs, outcome.counts.scorers) == (1, 2)
    carried = versions(dst_client, name)
    assert sorted(carried) == ["correct", "polite"]
    assert carried == {k: v for k, v in versions(src_client, name).items() if k != "exact"}
