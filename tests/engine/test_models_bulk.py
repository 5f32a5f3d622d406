"""Many models at once: export-models / import-models (the peer's bulk layout) and the Job-facing service."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from devstack.mlflow_server import MlflowServer
from ferry.cli.models import export_models, import_models
from ferry.engine.service import export_objects, import_objects
from ferry.options import ExportOptions, ImportOptions, ImportTarget, ModelVersionRef, Selection
from ferry.tracking import TrackingClient
from ferry.tracking.registry import Registry
from tests.engine.registry_compare import check_links, model_view
from tests.engine.registry_seed import SeededModel, seed_model


@pytest.fixture(scope="module")
def family(mlflow_src: MlflowServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[SeededModel]]:
    prefix = f"bulk-{uuid.uuid4().hex[:8]}"
    scratch = tmp_path_factory.mktemp("bulk")
    return prefix, [seed_model(mlflow_src.uri, f"{prefix}-{k}", scratch / k, versions=2) for k in ("a", "b")]


def test_export_models_and_import_models_with_renames(family: tuple[str, list[SeededModel]],
                                                      src_client: TrackingClient, dst_client: TrackingClient,
                                                      tmp_path: Path) -> None:
    prefix, models = family
    out = tmp_path / "bulk"
    runner = CliRunner()
    exported = runner.invoke(export_models, ["--models", f"{prefix}*", "--output-dir", str(out)],
                             env={"MLFLOW_TRACKING_URI": src_client.uri}, catch_exceptions=False)
    assert exported.exit_code == 0, exported.output
    listed = json.loads((out / "models" / "models.json").read_text())["mlflow"]["models"]
    assert sorted(listed) == [m.name for m in models]
    index = json.loads((out / "experiments" / "experiments.json").read_text())["mlflow"]["experiments"]
    assert sorted(e["name"] for e in index) == sorted(e for m in models for e in m.experiments)

    renames = tmp_path / "models.txt"
    renames.write_text(f"{prefix},copy-{prefix}\n")
    imported = runner.invoke(import_models, ["--input-dir", str(out), "--model-rename-file", str(renames)],
                             env={"MLFLOW_TRACKING_URI": dst_client.uri}, catch_exceptions=False)
    assert imported.exit_code == 0, imported.output
    for model in models:
        copy = f"copy-{model.name}"
        assert model_view(dst_client, copy) == model_view(src_client, model.name)
        check_links(src_client, dst_client, model.name, copy)
        for version in Registry(dst_client).versions(copy):  # linked to the runs imported with experiments
            exp_id = dst_client.get_run(version["run_id"])["info"]["experiment_id"]
            assert dst_client.get_experiment(exp_id)["name"] in model.experiments


def test_service_exports_and_imports_models_and_versions(family: tuple[str, list[SeededModel]],
                                                         src_client: TrackingClient, dst_client: TrackingClient,
                                                         tmp_path: Path, unique: str) -> None:
    _, (first, second) = family
    selection = Selection(models=[first.name], model_versions=[ModelVersionRef(model=second.name, version="2")])
    exported = export_objects(src_client.uri, tmp_path / "job", selection, ExportOptions())
    assert (exported.phase, exported.counts.models, exported.counts.versions) == ("Succeeded", 1, 3)

    target = ImportTarget(experiment_name=f"job-{unique}")
    for _ in range(2):  # idempotent: the second pass creates nothing
        imported = import_objects(dst_client.uri, tmp_path / "job", ImportOptions(), target)
        assert imported.phase == "Succeeded", imported.failed
    assert model_view(dst_client, first.name)["versions"] == model_view(src_client, first.name)["versions"]
    [version] = Registry(dst_client).versions(second.name)
    assert version["description"] == "version number 2"
