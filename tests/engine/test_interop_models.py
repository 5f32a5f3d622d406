"""Registered models and versions against the real mlflow-export-import 1.2.1, in both directions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.mlflow_server import MlflowServer
from ferry.engine.model_versions import export_model_version, import_model_version
from ferry.engine.models import export_model, import_model
from ferry.tracking import ArtifactStore, TrackingClient
from ferry.tracking.registry import Registry
from tests.engine.peer_tools import peer, require_peer
from tests.engine.registry_compare import check_links, model_view, version_view
from tests.engine.registry_seed import seed_logged_model_version, seed_model, shared_model

pytestmark = pytest.mark.peer


@pytest.fixture(scope="module")
def file_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    require_peer()
    server = MlflowServer(tmp_path_factory.mktemp("filestore"), serve_artifacts=False).start()
    yield server
    server.stop()


def test_peer_export_model_imported_by_us(mlflow_src: MlflowServer, src_client: TrackingClient,
                                          dst_client: TrackingClient, tmp_path: Path, unique: str) -> None:
    model = shared_model(mlflow_src.uri)
    out = tmp_path / "peer-model"
    peer("export-model", mlflow_src.uri, "--model", model.name, "--output-dir", str(out))
    written = [v["version"] for v in json.loads((out / "model.json").read_text())["mlflow"]["registered_model"]
               ["versions"]]
    assert written == sorted(model.versions)  # string order: 1, 10, 11, 2, ...

    name = f"from-peer-{unique}"
    outcome = import_model(dst_client, out, model_name=name)
    assert outcome.phase == "Succeeded", outcome.failed
    assert model_view(dst_client, name) == model_view(src_client, model.name)
    check_links(src_client, dst_client, model.name, name)


def test_peer_export_model_version_imported_by_us(mlflow_src: MlflowServer, src_client: TrackingClient,
                                                  dst_client: TrackingClient, tmp_path: Path, unique: str) -> None:
    model = shared_model(mlflow_src.uri)
    out = tmp_path / "peer-version"
    peer("export-model-version", mlflow_src.uri, "--model", model.name, "--version", "10", "--output-dir", str(out))

    name = f"version-from-peer-{unique}"
    import_model_version(dst_client, out, model_name=name, experiment_name=f"exp-{unique}", create_model=True,
                         import_stages_and_aliases=True, import_metadata=True)
    [version] = Registry(dst_client).versions(name)
    assert version_view(version) == {**version_view(Registry(src_client).get_version(model.name, "10")),
                                     "version": "1"}
    assert Registry(dst_client).get_model(name)["aliases"] == [{"alias": "ten", "version": "1"}]
    check_links(src_client, dst_client, model.name, name)


def test_our_export_model_imported_by_peer(file_server: MlflowServer, tmp_path: Path, unique: str) -> None:
    client = TrackingClient(file_server.uri)
    model = seed_model(file_server.uri, f"ours-{unique}", tmp_path / "seed", versions=3)
    out = tmp_path / "our-model"
    assert export_model(client, model.name, out).phase == "Succeeded"

    name = f"peer-in-{unique}"
    peer("import-model", file_server.uri, "--input-dir", str(out), "--model", name, "--experiment-name", name)
    assert model_view(client, name) == model_view(client, model.name)
    for version in Registry(client).versions(name):
        assert version["run_id"] not in model.run_of_version.values()
        assert Path(version["source"], "weights.bin").read_bytes() == bytes([int(version["version"])]) * 512


def test_our_export_model_version_imported_by_peer(file_server: MlflowServer, tmp_path: Path,
                                                   unique: str) -> None:
    client = TrackingClient(file_server.uri)
    model = seed_model(file_server.uri, f"ours-v-{unique}", tmp_path / "seed", versions=2)
    out = tmp_path / "our-version"
    export_model_version(client, model.name, "2", out)

    name = f"peer-v-{unique}"
    peer("import-model-version", file_server.uri, "--input-dir", str(out), "--model", name,
         "--experiment-name", name, "--create-model", "True", "--import-stages-and-aliases", "True")
    [version] = Registry(client).versions(name)
    assert version_view(version) == {**version_view(Registry(client).get_version(model.name, "2")), "version": "1"}
    assert Registry(client).get_model(name)["aliases"] == [{"alias": "previous", "version": "1"}]


def test_peer_export_of_a_logged_model_version_imported_by_us(mlflow_src: MlflowServer, dst_client: TrackingClient,
                                                              tmp_path: Path, unique: str) -> None:
    name = f"peer-logged-{unique}"
    _, model_id = seed_logged_model_version(mlflow_src.uri, name, tmp_path / "seed")
    out = tmp_path / "peer-logged"
    peer("export-model", mlflow_src.uri, "--model", name, "--output-dir", str(out))
    assert (out / model_id / "logged_model.json").is_file()

    assert import_model(dst_client, out, model_name=name).phase == "Succeeded"
    [version] = Registry(dst_client).versions(name)
    logged = dst_client.get_logged_model(version["source"].removeprefix("models:/"))["info"]
    assert (logged["name"], logged["source_run_id"]) == ("classifier", version["run_id"])
    assert ArtifactStore(dst_client, logged["artifact_uri"]).read_bytes("weights.bin") == bytes([7]) * 512
