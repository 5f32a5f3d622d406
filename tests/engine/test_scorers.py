"""Scorers registered on experiments (mlflow.genai.scorers) between two real servers.

Seeded with built-in scorers and judges: the destination fixture server refuses custom ``@scorer`` code, as
MLflow servers do by default.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
from mlflow.genai.judges import make_judge
from mlflow.genai.scorers import Guidelines, get_scorer, list_scorers

from devstack.mlflow_server import MlflowServer
from ferry.engine.scorers import SCORERS_FILE, export_scorers, import_scorers
from ferry.tracking import TrackingClient
from ferry.tracking.scorers import Scorers


def seed_scorers(uri: str, experiment: str) -> str:
    """Two versions of a guidelines scorer and one judge on `experiment`; returns its id."""
    mlflow.set_tracking_uri(uri)
    exp_id = mlflow.set_experiment(experiment).experiment_id
    Guidelines(name="polite", guidelines=["Be polite"]).register(name="polite", experiment_id=exp_id)
    Guidelines(name="polite", guidelines=["Be polite", "Be brief"]).register(name="polite", experiment_id=exp_id)
    make_judge(name="correct", instructions="Is {{ outputs }} a correct answer to {{ inputs }}?",
               model="openai:/gpt-4o-mini", feedback_value_type=bool).register(name="correct", experiment_id=exp_id)
    return exp_id


def versions(client: TrackingClient, experiment: str) -> dict[str, list[tuple[int, str]]]:
    """Each scorer's versions as (number, serialized form): what an import must reproduce."""
    exp_id = client.get_experiment_by_name(experiment)["experiment_id"]
    api = Scorers(client)
    return {s["scorer_name"]: [(v["scorer_version"], v["serialized_scorer"]) for v in
                               api.versions(exp_id, s["scorer_name"])] for s in api.latest(exp_id)}


def scorer_view(uri: str, experiment: str) -> dict[str, dict]:
    """The scorers as MLflow's own client loads them back."""
    mlflow.set_tracking_uri(uri)
    exp_id = mlflow.MlflowClient(uri).get_experiment_by_name(experiment).experiment_id
    found = {}
    for scorer in list_scorers(experiment_id=exp_id):
        loaded = get_scorer(name=scorer.name, experiment_id=exp_id)
        found[scorer.name] = {"class": type(loaded).__name__, **{
            k: getattr(loaded, k, None) for k in ("guidelines", "instructions", "model", "aggregations")}}
    return found


@pytest.fixture
def seeded(mlflow_src: MlflowServer, unique: str) -> str:
    name = f"scored-{unique}"
    seed_scorers(mlflow_src.uri, name)
    return name


def test_scorers_carried_with_every_version_and_a_rerun_registers_nothing(
        mlflow_src: MlflowServer, mlflow_dst: MlflowServer, src_client: TrackingClient, dst_client: TrackingClient,
        seeded: str, tmp_path: Path) -> None:
    outcome = export_scorers(src_client, seeded, tmp_path)
    assert outcome.phase == "Succeeded" and outcome.message == "2 scorers, 3 scorer versions", outcome.failed
    doc = json.loads((tmp_path / SCORERS_FILE).read_text())["mlflow"]
    assert doc["experiment"]["name"] == seeded and [s["name"] for s in doc["scorers"]] == ["correct", "polite"]

    outcome = import_scorers(dst_client, tmp_path)
    assert outcome.phase == "Succeeded" and outcome.message == "2 scorers, 3 scorer versions", outcome.failed
    assert versions(dst_client, seeded) == versions(src_client, seeded)
    view = scorer_view(mlflow_dst.uri, seeded)
    assert view == scorer_view(mlflow_src.uri, seeded)
    assert view["polite"]["guidelines"] == ["Be polite", "Be brief"] and view["correct"]["model"] == "openai:/gpt-4o-mini"

    again = import_scorers(dst_client, tmp_path)
    assert again.phase == "Succeeded" and again.message == "2 scorers, 0 scorer versions"
    assert versions(dst_client, seeded) == versions(src_client, seeded)


def test_a_destination_version_of_its_own_is_superseded_by_the_source(
        mlflow_src: MlflowServer, mlflow_dst: MlflowServer, src_client: TrackingClient, dst_client: TrackingClient,
        seeded: str, unique: str, tmp_path: Path) -> None:
    target = f"scored-elsewhere-{unique}"
    mlflow.set_tracking_uri(mlflow_dst.uri)
    exp_id = mlflow.set_experiment(target).experiment_id
    Guidelines(name="polite", guidelines=["Be polite"]).register(name="polite", experiment_id=exp_id)
    Guidelines(name="polite", guidelines=["Shout"]).register(name="polite", experiment_id=exp_id)

    export_scorers(src_client, src_client.get_experiment_by_name(seeded)["experiment_id"], tmp_path)
    outcome = import_scorers(dst_client, tmp_path, experiment_name=target)
    assert outcome.phase == "Succeeded", outcome.failed
    assert outcome.message == "2 scorers, 2 scorer versions"  # "Be polite" was there already
    polite = [json.loads(s)["builtin_scorer_pydantic_data"]["guidelines"] for _, s in versions(dst_client, target)["polite"]]
    assert polite == [["Be polite"], ["Shout"], ["Be polite", "Be brief"]]
    assert scorer_view(mlflow_dst.uri, target) == scorer_view(mlflow_src.uri, seeded)
    assert import_scorers(dst_client, tmp_path, experiment_name=target).message == "2 scorers, 0 scorer versions"


def test_an_experiment_without_scorers(src_client: TrackingClient, dst_client: TrackingClient, unique: str,
                                       tmp_path: Path) -> None:
    name = f"unscored-{unique}"
    src_client.create_experiment(name)
    outcome = export_scorers(src_client, name, tmp_path)
    assert outcome.phase == "Succeeded" and outcome.message == "0 scorers, 0 scorer versions"
    assert json.loads((tmp_path / SCORERS_FILE).read_text())["mlflow"]["scorers"] == []
    assert import_scorers(dst_client, tmp_path).message == "0 scorers, 0 scorer versions"
    assert dst_client.get_experiment_by_name(name) is None  # nothing to carry, nothing created
