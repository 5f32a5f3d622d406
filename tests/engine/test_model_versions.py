"""Single model versions between two real MLflow servers: export/import, copy, errors."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from devstack.mlflow_server import MlflowServer
from ferry.cli.copy import copy_model_version
from ferry.cli.model_versions import export_model_version, import_model_version
from ferry.engine.registry_format import tags_dict
from ferry.tracking import TrackingClient, tags_of
from ferry.tracking.registry import Registry
from tests.engine.conftest import Pair, on_pair
from tests.engine.registry_compare import check_links, version_view
from tests.engine.registry_seed import SeededModel, seed_model


@pytest.fixture(scope="module")
def model(mlflow_src: MlflowServer, tmp_path_factory: pytest.TempPathFactory) -> SeededModel:
    return seed_model(mlflow_src.uri, f"grape-{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("model"), versions=3)


@pytest.fixture
def pair_model(pair: Pair, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SeededModel:
    """The 3-version model on the pair's source."""
    return on_pair(pair, request, "model", "model-3", lambda: seed_model(
        pair.src.uri, f"grape-{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("model"), versions=3))


def cli(command, uri: str | None, *args: str):
    env = {"MLFLOW_TRACKING_URI": uri} if uri else {}
    return CliRunner().invoke(command, list(args), env=env, catch_exceptions=False)


def test_version_round_trip_creates_model_stage_and_aliases(pair: Pair, pair_model: SeededModel, unique: str,
                                                            tmp_path: Path) -> None:
    model, src_client, dst_client = pair_model, pair.src_client, pair.dst_client
    out = tmp_path / "v2"
    exported = cli(export_model_version, src_client.uri, "--model", model.name, "--version", "2",
                   "--output-dir", str(out), "--export-version-model", "True")
    assert exported.exit_code == 0, exported.output
    assert {p.name for p in out.iterdir()} == {"version.json", "model.json", "experiment.json", "run", "version_model"}
    assert (out / "version_model" / "weights.bin").read_bytes() == bytes([2]) * 512
    doc = json.loads((out / "version.json").read_text())["mlflow"]["model_version"]
    assert (doc["version"], doc["aliases"], doc["current_stage"]) == ("2", ["previous"], "Production")

    name, experiment = f"single-{unique}", f"single-exp-{unique}"
    args = ["--model", name, "--experiment-name", experiment, "--input-dir", str(out), "--create-model", "True",
            "--import-stages-and-aliases", "True", "--import-metadata", "True"]
    for _ in range(2):  # the second import finds the first one's version
        imported = cli(import_model_version, dst_client.uri, *args)
        assert imported.exit_code == 0, imported.output

    dst_model = Registry(dst_client).get_model(name)
    src_model = Registry(src_client).get_model(model.name)
    assert (dst_model["description"], tags_dict(dst_model["tags"])) == (src_model["description"],
                                                                       tags_dict(src_model["tags"]))
    assert dst_model["aliases"] == [{"alias": "previous", "version": "1"}]
    [version] = Registry(dst_client).versions(name)
    assert version_view(version) == {**version_view(Registry(src_client).get_version(model.name, "2")),
                                     "version": "1"}
    check_links(src_client, dst_client, model.name, name)
    exp = dst_client.get_experiment(dst_client.get_run(version["run_id"])["info"]["experiment_id"])
    assert (exp["name"], tags_of(exp)["purpose"]) == (experiment, "train")


def test_import_into_a_missing_model_without_create_model_is_one_line(model: SeededModel,
                                                                      src_client: TrackingClient,
                                                                      dst_client: TrackingClient, unique: str,
                                                                      tmp_path: Path) -> None:
    out = tmp_path / "v1"
    assert cli(export_model_version, src_client.uri, "--model", model.name, "--version", "1",
               "--output-dir", str(out)).exit_code == 0
    result = cli(import_model_version, dst_client.uri, "--model", f"absent-{unique}", "--experiment-name", "e",
                 "--input-dir", str(out))
    assert result.exit_code == 1
    assert result.output == (f"Error: registered model 'absent-{unique}' not found in MLflow at {dst_client.uri} "
                             "(use --create-model True to create it)\n")


def test_copy_model_version_between_servers(model: SeededModel, src_client: TrackingClient,
                                            dst_client: TrackingClient, unique: str) -> None:
    name, experiment = f"copied-{unique}", f"copied-exp-{unique}"
    args = ["--src-model", model.name, "--src-version", "3", "--dst-model", name, "--dst-experiment-name", experiment,
            "--src-mlflow-uri", src_client.uri, "--dst-mlflow-uri", dst_client.uri,
            "--copy-stages-and-aliases", "True"]
    for _ in range(2):
        result = cli(copy_model_version, None, *args)
        assert result.exit_code == 0, result.output

    [version] = Registry(dst_client).versions(name)
    assert version_view(version) == {**version_view(Registry(src_client).get_version(model.name, "3")),
                                     "version": "1"}
    check_links(src_client, dst_client, model.name, name)
    run = dst_client.get_run(version["run_id"])
    assert dst_client.get_experiment(run["info"]["experiment_id"])["name"] == experiment


def test_copy_within_one_server_shares_the_run(model: SeededModel, src_client: TrackingClient, unique: str) -> None:
    name = f"alias-{unique}"
    result = cli(copy_model_version, src_client.uri, "--src-model", model.name, "--src-version", "1",
                 "--dst-model", name)
    assert result.exit_code == 0, result.output
    [version] = Registry(src_client).versions(name)
    original = Registry(src_client).get_version(model.name, "1")
    assert (version["run_id"], version["source"]) == (original["run_id"], original["source"])
    assert version["current_stage"] == "None"


def test_unknown_model_and_version_are_one_line(model: SeededModel, mlflow_src: MlflowServer,
                                                tmp_path: Path) -> None:
    no_model = cli(export_model_version, mlflow_src.uri, "--model", "nope", "--version", "1",
                   "--output-dir", str(tmp_path))
    assert (no_model.exit_code, no_model.output) == (
        1, f"Error: registered model 'nope' not found in MLflow at {mlflow_src.uri}\n")
    no_version = cli(export_model_version, mlflow_src.uri, "--model", model.name, "--version", "42",
                     "--output-dir", str(tmp_path))
    assert (no_version.exit_code, no_version.output) == (
        1, f"Error: version 42 of registered model '{model.name}' not found in MLflow at {mlflow_src.uri}\n")
