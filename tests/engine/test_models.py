"""Registered models between two real MLflow servers: export, import, filters, idempotence, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from devstack.mlflow_server import MlflowServer
from ferry.cli.models import export_model, import_model
from ferry.engine.model_versions import copy_model_version
from ferry.engine.models import export_model as export_model_api
from ferry.engine.models import import_model as import_model_api
from ferry.engine.models import parse_stages
from ferry.options import ExportOptions
from ferry.tracking import ArtifactStore, TrackingClient, tags_of
from ferry.tracking.registry import Registry
from tests.engine.conftest import Pair, on_pair
from tests.engine.registry_compare import check_links, model_view
from tests.engine.registry_seed import SeededModel, seed_logged_model_version, seed_model, shared_model


@pytest.fixture(scope="module")
def model(mlflow_src: MlflowServer) -> SeededModel:
    return shared_model(mlflow_src.uri)


@pytest.fixture(scope="module")
def exported(model: SeededModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_seeded(model, tmp_path_factory)


@pytest.fixture
def pair_model(pair: Pair, request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> tuple[SeededModel, Path]:
    """The 11-version model and its export, on the pair's source."""
    seeded = on_pair(pair, request, "model", "model", lambda: shared_model(pair.src.uri))
    return seeded, on_pair(pair, request, "exported", "model-export", lambda: export_seeded(seeded, tmp_path_factory))


def export_seeded(model: SeededModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "model"
    outcome = export_model_api(TrackingClient(model.uri), model.name, out)
    assert outcome.phase == "Succeeded" and outcome.counts.versions == 11
    return out


def cli(command, uri: str, *args: str):
    return CliRunner().invoke(command, list(args), env={"MLFLOW_TRACKING_URI": uri}, catch_exceptions=False)


def test_export_writes_the_peer_layout(model: SeededModel, exported: Path) -> None:
    doc = json.loads((exported / "model.json").read_text())
    assert doc["system"]["export_file_version"] == "2"
    registered = doc["mlflow"]["registered_model"]
    assert [v["version"] for v in registered["versions"]] == model.versions
    assert {d.name for d in exported.iterdir() if d.is_dir()} == set(model.run_of_version.values())
    ten = registered["versions"][9]
    assert (ten["current_stage"], ten["aliases"], ten["tags"]) == ("Staging", ["ten"], {"n": "10", "parity": "even"})
    assert ten["_experiment_name"] == model.experiments[0]
    assert ten["source"] == f"{ten['_run_artifact_uri']}/model"


def test_import_to_a_new_name_is_faithful_and_idempotent(pair: Pair, pair_model: tuple[SeededModel, Path],
                                                         unique: str) -> None:
    (model, exported), src_client, dst_client = pair_model, pair.src_client, pair.dst_client
    name = f"imported-{unique}"
    result = cli(import_model, dst_client.uri, "--input-dir", str(exported), "--model", name,
                 "--await-creation-for", "30")
    assert result.exit_code == 0, result.output

    assert model_view(dst_client, name) == model_view(src_client, model.name)
    check_links(src_client, dst_client, model.name, name)
    # Without --experiment-name, runs land in experiments named as their source experiments.
    for version in Registry(dst_client).versions(name):
        run = dst_client.get_run(version["run_id"])
        expected = model.experiments[int(version["version"]) % 2]
        assert dst_client.get_experiment(run["info"]["experiment_id"])["name"] == expected

    again = import_model_api(dst_client, exported, model_name=name)
    assert again.counts.versions == 0
    assert len(Registry(dst_client).versions(name)) == 11


def test_export_filters_by_stage_and_by_version(model: SeededModel, src_client: TrackingClient,
                                                tmp_path: Path) -> None:
    by_stage = export_model_api(src_client, model.name, tmp_path / "stage",
                                ExportOptions(stages=parse_stages(["production", "Archived"])))
    by_version = export_model_api(src_client, model.name, tmp_path / "version", ExportOptions(versions=["2", "10"]))
    latest = export_model_api(src_client, model.name, tmp_path / "latest", ExportOptions(export_latest_versions=True))

    def versions(out: str | None) -> list[str]:
        doc = json.loads((Path(str(out)) / "model.json").read_text())
        return [v["version"] for v in doc["mlflow"]["registered_model"]["versions"]]

    assert versions(by_stage.path) == ["2", "5", "11"]
    assert versions(by_version.path) == ["2", "10"]
    assert versions(latest.path) == ["5", "9", "10", "11"]  # newest per stage: Archived, None, Staging, Production
    assert len([d for d in Path(str(by_version.path)).iterdir() if d.is_dir()]) == 2


def test_delete_model_replaces_what_was_there(model: SeededModel, exported: Path, src_client: TrackingClient,
                                              dst_client: TrackingClient, unique: str, tmp_path: Path) -> None:
    name = f"replaced-{unique}"
    partial = export_model_api(src_client, model.name, tmp_path / "partial", ExportOptions(versions=["3"]))
    import_model_api(dst_client, Path(str(partial.path)), model_name=name, experiment_name=f"exp-{unique}")
    Registry(dst_client).set_model_tag(name, "stale", "yes")
    assert [v["version"] for v in Registry(dst_client).versions(name)] == ["1"]

    result = cli(import_model, dst_client.uri, "--input-dir", str(exported), "--model", name,
                 "--experiment-name", f"exp-{unique}", "--delete-model", "True")
    assert result.exit_code == 0, result.output
    assert model_view(dst_client, name) == model_view(src_client, model.name)


def test_databricks_only_options_are_accepted_with_one_warning(model: SeededModel, mlflow_src: MlflowServer,
                                                               tmp_path: Path) -> None:
    result = cli(export_model, mlflow_src.uri, "--model", model.name, "--output-dir", str(tmp_path / "out"),
                 "--versions", "1", "--export-permissions", "True", "--notebook-formats", "SOURCE,HTML")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1 and "--export-permissions" in warnings[0] and "--notebook-formats" in warnings[0]


def test_bad_input_is_one_line(model: SeededModel, mlflow_src: MlflowServer, tmp_path: Path) -> None:
    missing = cli(export_model, mlflow_src.uri, "--model", "no-such-model", "--output-dir", str(tmp_path / "x"))
    assert missing.exit_code == 1
    assert missing.output == f"Error: registered model 'no-such-model' not found in MLflow at {mlflow_src.uri}\n"

    both = cli(export_model, mlflow_src.uri, "--model", model.name, "--output-dir", str(tmp_path / "y"),
               "--stages", "Production", "--versions", "1")
    assert both.exit_code == 2
    assert both.output == "Error: --stages and --versions cannot be used together\n"

    bad_stage = cli(export_model, mlflow_src.uri, "--model", model.name, "--output-dir", str(tmp_path / "z"),
                    "--stages", "Prod")
    assert (bad_stage.exit_code, bad_stage.output.count("\n")) == (2, 1)

    no_version = cli(export_model, mlflow_src.uri, "--model", model.name, "--output-dir", str(tmp_path / "w"),
                     "--versions", "99")
    assert no_version.exit_code == 1
    assert no_version.output.startswith(f"Error: version 99 of registered model '{model.name}' not found")

    not_export = cli(import_model, mlflow_src.uri, "--input-dir", str(tmp_path), "--model", "m")
    assert not_export.exit_code == 1
    assert not_export.output == f"Error: {tmp_path} is not an export directory: model.json is missing\n"


def test_versions_of_logged_models_bring_their_model(mlflow_src: MlflowServer, src_client: TrackingClient,
                                                     dst_client: TrackingClient, tmp_path: Path, unique: str) -> None:
    name = f"logged-{unique}"
    src_run, src_model_id = seed_logged_model_version(mlflow_src.uri, name, tmp_path / "seed")
    out = tmp_path / "out"
    assert export_model_api(src_client, name, out).phase == "Succeeded"
    assert (out / src_model_id / "logged_model.json").is_file()

    for _ in range(2):
        assert import_model_api(dst_client, out, model_name=name).phase == "Succeeded"
    [version] = Registry(dst_client).versions(name)
    new_id = version["source"].removeprefix("models:/")
    assert new_id != src_model_id and version["description"] == "from a logged model"
    logged = dst_client.get_logged_model(new_id)["info"]
    assert (logged["name"], logged["model_type"], logged["source_run_id"]) == ("classifier", "clf", version["run_id"])
    assert tags_of(dst_client.get_run(version["run_id"])["data"])["ferry.source.run_id"] == src_run
    assert ArtifactStore(dst_client, logged["artifact_uri"]).read_bytes("weights.bin") == bytes([7]) * 512

    copied = f"logged-copy-{unique}"
    copy_model_version(src_client, dst_client, name, "1", copied, dst_experiment_name=f"exp-{unique}")
    [version] = Registry(dst_client).versions(copied)
    logged = dst_client.get_logged_model(version["source"].removeprefix("models:/"))["info"]
    assert ArtifactStore(dst_client, logged["artifact_uri"]).read_bytes("weights.bin") == bytes([7]) * 512


def test_versions_of_deleted_runs_are_listed_or_exported_on_request(mlflow_src: MlflowServer,
                                                                    dst_client: TrackingClient, tmp_path: Path,
                                                                    unique: str) -> None:
    small = seed_model(mlflow_src.uri, f"deleted-{unique}", tmp_path / "seed", versions=2)
    MlflowClient(mlflow_src.uri).delete_run(small.run_of_version["1"])

    skipped = cli(export_model, mlflow_src.uri, "--model", small.name, "--output-dir", str(tmp_path / "a"))
    assert skipped.exit_code == 3
    assert f"Failed: version 1 of '{small.name}': deleted run" in skipped.output
    info = json.loads((tmp_path / "a" / "model.json").read_text())["info"]
    assert [f["version"]["version"] for f in info["failed_versions"]] == ["1"]

    kept = cli(export_model, mlflow_src.uri, "--model", small.name, "--output-dir", str(tmp_path / "b"),
               "--export-deleted-runs", "True")
    assert kept.exit_code == 0, kept.output
    assert import_model_api(dst_client, tmp_path / "b", model_name=small.name).phase == "Succeeded"
    first, _ = Registry(dst_client).versions(small.name)
    assert dst_client.get_run(first["run_id"])["info"]["lifecycle_stage"] == "deleted"
