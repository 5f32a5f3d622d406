"""MLflow 3 logged models that no registered version points at: export, import, compare field by field.

Seeded with ``mlflow.pyfunc.log_model(name=...)`` on real servers; compared on both servers through
the REST API, with every run id read as the source run it stands for.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from devstack.mlflow_server import MlflowServer
from ferry.cli import logged_models as cli_commands
from ferry.engine import runs
from ferry.engine.logged_models_bulk import export_logged_models, import_logged_models, imported_model_ids
from ferry.engine.models import export_model, import_model
from ferry.tracking import ArtifactStore, TrackingClient, tags_of
from ferry.tracking.logged_models import LoggedModels
from ferry.tracking.registry import Registry
from tests.engine.conftest import Pair
from tests.engine.logged_model_seed import SeededLoggedModels, seed_logged_models
from tests.engine.peer_tools import peer
from tests.engine.registry_seed import seed_logged_model_version

OURS = ("ferry.source.model_id", "ferry.import.complete")


def cli(command, uri: str, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(command, list(args), env={"MLFLOW_TRACKING_URI": uri}, catch_exceptions=False)


def source_of(client: TrackingClient, run_id: str | None, *, dst: bool) -> str | None:
    """The source run a run stands for: itself on the source server, its import tag on the destination."""
    if not run_id:
        return None
    return tags_of(client.get_run(run_id)["data"]).get(runs.SOURCE_RUN_ID_TAG) if dst else run_id


def model_view(client: TrackingClient, model_id: str, *, dst: bool) -> dict:
    """A logged model's fields, with run ids as the source runs they stand for and no ids of its own."""
    model = LoggedModels(client).get(model_id)
    info, data = model["info"], model.get("data") or {}
    metrics = sorted((m["key"], m["value"], m["step"], m["timestamp"], m.get("dataset_name"),
                      m.get("dataset_digest"), source_of(client, m["run_id"], dst=dst))
                     for m in data.get("metrics") or [])
    return {
        "name": info.get("name"), "model_type": info.get("model_type"), "status": info["status"],
        "params": {p["key"]: p["value"] for p in data.get("params") or []},
        "tags": {k: v for k, v in tags_of(info).items() if k not in OURS},
        "metrics": metrics,
        "source_run": source_of(client, info.get("source_run_id"), dst=dst),
    }


def files_of(client: TrackingClient, model_id: str) -> dict[str, bytes]:
    store = ArtifactStore(client, LoggedModels(client).get(model_id)["info"]["artifact_uri"])
    return {f.path: store.read_bytes(f.path) for f in store.walk()}


def outputs_of(client: TrackingClient, run_id: str) -> list[tuple[str, int]]:
    return sorted((o["model_id"], int(o.get("step", 0)))
                  for o in (client.get_run(run_id).get("outputs") or {}).get("model_outputs") or [])


def carry_runs(src: TrackingClient, dst: TrackingClient, seeded: SeededLoggedModels, out: Path,
               experiment_id: str) -> dict[str, str]:
    """The seeded runs through our run export and import: source run id → destination run id."""
    mapping = {}
    for run_id in (seeded.train_run, seeded.eval_run):
        runs.export_run(src, run_id, out / run_id)
        mapping[run_id] = runs.import_run(dst, out / run_id, experiment_id).dst_run_id
    return mapping


def check_carried(src: TrackingClient, dst: TrackingClient, seeded: SeededLoggedModels, ids: dict[str, str],
                  *, mlmodel_fixed: bool, output_steps: bool = True) -> None:
    """Every seeded model on the destination equals its source: fields, metrics, files, run links.

    Without `output_steps` (the peer's files do not hold them) every output is at step 0.
    """
    assert sorted(ids) == sorted(seeded.model_ids.values())
    for src_id, dst_id in ids.items():
        assert dst_id != src_id
        assert model_view(dst, dst_id, dst=True) == model_view(src, src_id, dst=False)
        src_files, dst_files = files_of(src, src_id), files_of(dst, dst_id)
        assert sorted(dst_files) == sorted(src_files)
        for path, content in src_files.items():
            if path != "MLmodel" or not mlmodel_fixed:
                assert dst_files[path] == content, path
        if "MLmodel" in src_files and mlmodel_fixed:
            before, after = yaml.safe_load(src_files["MLmodel"]), yaml.safe_load(dst_files["MLmodel"])
            info = LoggedModels(dst).get(dst_id)["info"]
            assert (after["model_id"], after["model_uuid"], after["artifact_path"], after["run_id"]) == \
                (dst_id, dst_id, info["artifact_uri"], info["source_run_id"])
            assert {k: v for k, v in after.items() if k not in ("model_id", "model_uuid", "artifact_path", "run_id")} \
                == {k: v for k, v in before.items() if k not in ("model_id", "model_uuid", "artifact_path", "run_id")}
    info = LoggedModels(dst).get(ids[seeded.model_ids["echo"]])["info"]
    assert outputs_of(dst, info["source_run_id"]) == sorted(
        (ids[seeded.model_ids[name]], step if output_steps else 0) for name, step in (("echo", 0), ("second", 4)))


def test_unregistered_logged_models_travel_with_their_runs(pair: Pair, tmp_path: Path, unique: str) -> None:
    src_client, dst_client = pair.src_client, pair.dst_client
    seeded = seed_logged_models(pair.src.uri, f"logged-{unique}")
    out = tmp_path / "export"
    exported = export_logged_models(src_client, [seeded.experiment_id], out / "logged_models")
    assert exported.phase == "Succeeded", exported.failed
    index = json.loads((out / "logged_models" / "logged_models.json").read_text())["mlflow"]["experiments"]
    assert [(e["name"], sorted(e["logged_models"])) for e in index] == \
        [(seeded.experiment_name, sorted(seeded.model_ids.values()))]

    dst_exp = dst_client.get_or_create_experiment(f"logged-dst-{unique}")["experiment_id"]
    run_map = carry_runs(src_client, dst_client, seeded, out / "runs", dst_exp)
    first = import_logged_models(dst_client, out / "logged_models", experiment_name=f"logged-dst-{unique}",
                                 run_map=run_map)
    assert first.phase == "Succeeded", first.failed
    assert first.message == "imported 3 logged models"
    ids = imported_model_ids(dst_client, dst_exp)
    check_carried(src_client, dst_client, seeded, ids, mlmodel_fixed=True)
    assert LoggedModels(dst_client).get(ids[seeded.model_ids["broken"]])["info"]["status"] == "LOGGED_MODEL_UPLOAD_FAILED"

    runs_before = sorted(r["info"]["run_id"] for r in dst_client.search_runs([dst_exp], run_view_type="ALL"))
    again = import_logged_models(dst_client, out / "logged_models", experiment_name=f"logged-dst-{unique}")
    assert (again.phase, again.message) == ("Succeeded", "imported 0 logged models, 3 already imported")
    assert sorted(m["info"]["model_id"] for m in LoggedModels(dst_client).search([dst_exp])) == sorted(ids.values())
    assert sorted(r["info"]["run_id"] for r in dst_client.search_runs([dst_exp], run_view_type="ALL")) == runs_before
    check_carried(src_client, dst_client, seeded, ids, mlmodel_fixed=True)


def test_commands_find_runs_by_their_import_tag_and_report_failures(mlflow_src: MlflowServer,
                                                                    mlflow_dst: MlflowServer,
                                                                    src_client: TrackingClient,
                                                                    dst_client: TrackingClient, tmp_path: Path,
                                                                    unique: str) -> None:
    seeded = seed_logged_models(mlflow_src.uri, f"logged-cli-{unique}")
    out = tmp_path / "models"
    done = cli(cli_commands.export_logged_models, mlflow_src.uri, "--experiment-ids", seeded.experiment_id,
               "--output-dir", str(out))
    assert done.exit_code == 0, done.output
    dst_exp = dst_client.get_or_create_experiment(seeded.experiment_name)["experiment_id"]
    carry_runs(src_client, dst_client, seeded, tmp_path / "runs", dst_exp)  # no map given: found by tag

    (out / seeded.model_ids["second"] / "logged_model.json").write_text("{not json")
    partial = cli(cli_commands.import_logged_models, mlflow_dst.uri, "--input-dir", str(out))
    assert partial.exit_code == 3, partial.output
    assert f"Failed: logged model {seeded.model_ids['second']}: " in partial.output
    assert "is corrupt" in partial.output

    ids = imported_model_ids(dst_client, dst_exp)
    assert sorted(ids) == sorted([seeded.model_ids["echo"], seeded.model_ids["broken"]])
    for src_id, dst_id in ids.items():
        assert model_view(dst_client, dst_id, dst=True) == model_view(src_client, src_id, dst=False)


def test_one_model_without_its_run_hangs_off_a_stand_in_run(mlflow_src: MlflowServer, mlflow_dst: MlflowServer,
                                                            src_client: TrackingClient, dst_client: TrackingClient,
                                                            tmp_path: Path, unique: str) -> None:
    seeded = seed_logged_models(mlflow_src.uri, f"logged-one-{unique}")
    echo = seeded.model_ids["echo"]
    out = tmp_path / "echo"
    assert cli(cli_commands.export_logged_model, mlflow_src.uri, "--model-id", echo,
               "--output-dir", str(out)).exit_code == 0
    name = f"logged-one-dst-{unique}"
    for _ in range(2):
        done = cli(cli_commands.import_logged_model, mlflow_dst.uri, "--input-dir", str(out),
                   "--experiment-name", name, "--mlmodel-fix", "False")
        assert done.exit_code == 0, done.output
    assert "1 already imported" in done.output
    dst_exp = dst_client.get_experiment_by_name(name)["experiment_id"]
    [model] = LoggedModels(dst_client).search([dst_exp])
    info = model["info"]
    assert files_of(dst_client, info["model_id"]) == files_of(src_client, echo)  # byte-equal, MLmodel too
    standin = dst_client.get_run(info["source_run_id"])
    assert tags_of(standin["data"])["ferry.standin.run_id"] == seeded.train_run
    assert [d["dataset"]["name"] for d in standin["inputs"]["dataset_inputs"]] == ["train-ds"]
    view = model_view(dst_client, info["model_id"], dst=True)
    source = model_view(src_client, echo, dst=False)
    assert {**view, "source_run": None, "metrics": None} == {**source, "source_run": None, "metrics": None}
    assert [m[:6] for m in view["metrics"]] == [m[:6] for m in source["metrics"]]  # the evaluation run's too


@pytest.mark.peer
def test_peer_export_imported_by_us(mlflow_src: MlflowServer, src_client: TrackingClient,
                                    dst_client: TrackingClient, tmp_path: Path, unique: str) -> None:
    seeded = seed_logged_models(mlflow_src.uri, f"logged-peer-{unique}")
    out = tmp_path / "peer"
    peer("export-logged-models", mlflow_src.uri, "--experiment-ids", seeded.experiment_id, "--output-dir", str(out))
    dst_exp = dst_client.get_or_create_experiment(seeded.experiment_name)["experiment_id"]
    run_map = carry_runs(src_client, dst_client, seeded, tmp_path / "runs", dst_exp)
    done = import_logged_models(dst_client, out, run_map=run_map)
    assert done.phase == "Succeeded", done.failed
    check_carried(src_client, dst_client, seeded, imported_model_ids(dst_client, dst_exp), mlmodel_fixed=True,
                  output_steps=False)


@pytest.mark.peer
def test_our_export_imported_by_the_peer(mlflow_src: MlflowServer, mlflow_dst: MlflowServer,
                                         src_client: TrackingClient, dst_client: TrackingClient, tmp_path: Path,
                                         unique: str) -> None:
    """Models of the training run only: the peer's import stops at a model without a run (it ends "no run")."""
    seeded = seed_logged_models(mlflow_src.uri, f"logged-to-peer-{unique}")
    out = tmp_path / "ours"
    done = export_logged_models(src_client, seeded.experiment_id, out,
                                run_ids={seeded.experiment_id: [seeded.train_run]})
    assert (done.phase, done.message) == ("Succeeded", f"exported 2 logged models to {out}")
    peer("import-logged-models", mlflow_dst.uri, "--input-dir", str(out))
    dst_exp = dst_client.get_experiment_by_name(seeded.experiment_name)["experiment_id"]
    carried = {m["info"]["name"]: m["info"]["model_id"] for m in LoggedModels(dst_client).search([dst_exp])}
    assert sorted(carried) == ["echo", "second"]
    for name in carried:
        view = model_view(dst_client, carried[name], dst=True)
        source = model_view(src_client, seeded.model_ids[name], dst=False)
        assert {**view, "source_run": None, "metrics": None} == {**source, "source_run": None, "metrics": None}
        assert [m[:6] for m in view["metrics"]] == [m[:6] for m in source["metrics"]]
        assert files_of(dst_client, carried[name]).keys() == files_of(src_client, seeded.model_ids[name]).keys()


def test_a_version_of_a_logged_model_and_the_experiment_s_models_share_one_copy(
        mlflow_src: MlflowServer, src_client: TrackingClient, dst_client: TrackingClient, tmp_path: Path,
        unique: str) -> None:
    """Imported through its registered version first, the model is found again by the logged-models import."""
    name = f"shared-logged-{unique}"
    _, src_id = seed_logged_model_version(mlflow_src.uri, name, tmp_path / "seed")
    src_exp = LoggedModels(src_client).get(src_id)["info"]["experiment_id"]
    assert export_logged_models(src_client, [src_exp], tmp_path / "logged").phase == "Succeeded"
    assert export_model(src_client, name, tmp_path / "model").phase == "Succeeded"

    assert import_model(dst_client, tmp_path / "model", model_name=name).phase == "Succeeded"
    again = import_logged_models(dst_client, tmp_path / "logged")
    assert (again.phase, again.message) == ("Succeeded", "imported 0 logged models, 1 already imported")
    dst_exp = dst_client.get_experiment_by_name(src_client.get_experiment(src_exp)["name"])["experiment_id"]
    [version] = Registry(dst_client).versions(name)
    assert version["source"] == f"models:/{imported_model_ids(dst_client, dst_exp)[src_id]}"


def test_mlflow2_has_none_to_export_and_cannot_take_any(mlflow_src: MlflowServer, src_client: TrackingClient,
                                                        mlflow2: TrackingClient, tmp_path: Path, unique: str) -> None:
    exp_id = mlflow2.create_experiment(f"old-{unique}")
    exported = export_logged_models(mlflow2, [exp_id], tmp_path / "none")
    assert (exported.phase, exported.failed) == ("Succeeded", [])
    assert exported.message == (f"exported 0 logged models to {tmp_path / 'none'} "
                                f"(MLflow at {mlflow2.uri} has no logged models (MLflow 2))")

    seeded = seed_logged_models(mlflow_src.uri, f"to-mlflow2-{unique}")
    export_logged_models(src_client, [seeded.experiment_id], tmp_path / "some")
    imported = import_logged_models(mlflow2, tmp_path / "some")
    assert imported.phase == "Failed"
    assert sorted(imported.failed) == sorted(
        f"logged model {model_id}: MLflow at {mlflow2.uri} has no logged models (MLflow 2): cannot create '{name}'"
        for name, model_id in seeded.model_ids.items())
    dst_exp = mlflow2.get_experiment_by_name(seeded.experiment_name)["experiment_id"]
    assert list(mlflow2.search_runs([dst_exp], run_view_type="ALL")) == []  # no stand-in runs left behind
