"""MLflow 3 evaluation datasets between two real servers: export, import, idempotence, the peer both ways."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
from click.testing import CliRunner
from mlflow.genai import datasets as genai_datasets

from devstack.mlflow_server import MlflowServer
from ferry.cli import evaluation_datasets as cli
from ferry.engine import evaluation_dataset_format as fmt
from ferry.engine.evaluation_datasets import (
    export_evaluation_dataset,
    export_evaluation_datasets,
    import_evaluation_dataset,
    import_evaluation_datasets,
)
from ferry.tracking import TrackingClient
from ferry.tracking.datasets import Datasets
from tests.engine.conftest import Pair
from tests.engine.evaluation_dataset_seed import SeededDataset, dataset_view, seed_dataset
from tests.engine.peer_tools import peer


def only_import(client: TrackingClient, name: str) -> dict:
    [dataset] = Datasets(client).find_by_name(name)
    return dataset


def record_times(client: TrackingClient, dataset_id: str) -> dict[str, int]:
    return {r["dataset_record_id"]: r["last_update_time"] for r in Datasets(client).records(dataset_id)}


@pytest.fixture
def seeded(mlflow_src: MlflowServer, unique: str) -> SeededDataset:
    return seed_dataset(mlflow_src.uri, f"qa-{unique}", [f"eval-a-{unique}", f"eval-b-{unique}"])


def test_export_writes_the_peer_layout(src_client: TrackingClient, seeded: SeededDataset, tmp_path: Path) -> None:
    outcome = export_evaluation_dataset(src_client, tmp_path, dataset_name=seeded.name)
    assert outcome.phase == "Succeeded", outcome.failed
    doc = json.loads((tmp_path / fmt.DATASET_FILE).read_text())
    written = doc["mlflow"]["evaluation_dataset"]
    src = Datasets(src_client).get(seeded.dataset_id)
    assert written["dataset_id"] == seeded.dataset_id and written["name"] == seeded.name
    assert written["source_type"] == "mlflow_evaluation_dataset"
    assert json.loads(written["source"]) == {"dataset_id": seeded.dataset_id}
    assert written["tags"] == src["tags"] and written["schema"] == src["schema"]
    assert written["profile"] == src["profile"] and json.loads(written["profile"]) == {"num_records": 4}
    assert sorted(written["_experiment_names"].values()) == sorted(seeded.experiments)
    assert sorted(written["experiment_ids"]) == sorted(written["_experiment_names"])
    assert len(written["records"]) == 4 and all("dataset_record_id" in r for r in written["records"])
    assert doc["system"]["mlflow_tracking_uri"] == src_client.uri


def test_import_carries_every_field_and_a_rerun_creates_nothing(pair: Pair, tmp_path: Path, unique: str) -> None:
    src_client, dst_client = pair.src_client, pair.dst_client
    seeded = seed_dataset(pair.src.uri, f"qa-{unique}", [f"eval-a-{unique}", f"eval-b-{unique}"])
    export_evaluation_dataset(src_client, tmp_path, dataset_id=seeded.dataset_id)
    outcome = import_evaluation_dataset(dst_client, tmp_path)
    assert outcome.phase == "Succeeded", outcome.failed
    assert outcome.message.startswith("1 evaluation datasets, 4 records")

    dst = only_import(dst_client, seeded.name)
    assert dataset_view(dst_client, dst["dataset_id"]) == dataset_view(src_client, seeded.dataset_id)
    assert dst["tags"][fmt.SOURCE_DATASET_TAG] == seeded.dataset_id
    assert dst["tags"][fmt.SOURCE_URI_TAG] == src_client.uri

    before = record_times(dst_client, dst["dataset_id"])
    again = import_evaluation_dataset(dst_client, tmp_path)
    assert again.phase == "Succeeded" and again.message.startswith("1 evaluation datasets, 0 records")
    assert only_import(dst_client, seeded.name)["dataset_id"] == dst["dataset_id"]
    assert record_times(dst_client, dst["dataset_id"]) == before  # not even merged again


def test_rerun_after_source_changes_adds_only_what_changed(
        mlflow_src: MlflowServer, src_client: TrackingClient, dst_client: TrackingClient, seeded: SeededDataset,
        tmp_path: Path) -> None:
    export_evaluation_dataset(src_client, tmp_path / "1", dataset_id=seeded.dataset_id)
    import_evaluation_dataset(dst_client, tmp_path / "1")
    dst_id = only_import(dst_client, seeded.name)["dataset_id"]
    before = record_times(dst_client, dst_id)

    mlflow.set_tracking_uri(mlflow_src.uri)
    new_exp = mlflow.MlflowClient(mlflow_src.uri).create_experiment(f"{seeded.name}-later")
    genai_datasets.add_dataset_to_experiments(seeded.dataset_id, [new_exp])
    genai_datasets.set_dataset_tags(seeded.dataset_id, {"stage": "silver"})
    genai_datasets.get_dataset(dataset_id=seeded.dataset_id).merge_records([
        {"inputs": {"question": "new one"}, "expectations": {"answer": "yes"}},
        {"inputs": {"question": "What is MLflow?"}, "expectations": {"score": 1.0}},
    ])
    export_evaluation_dataset(src_client, tmp_path / "2", dataset_id=seeded.dataset_id)
    outcome = import_evaluation_dataset(dst_client, tmp_path / "2")
    assert outcome.phase == "Succeeded", outcome.failed
    assert outcome.message.startswith("1 evaluation datasets, 1 records")
    view = dataset_view(dst_client, dst_id)
    assert view == dataset_view(src_client, seeded.dataset_id)
    assert view["tags"]["stage"] == "silver" and len(view["experiments"]) == 3
    after = record_times(dst_client, dst_id)
    changed = {rid for rid, t in after.items() if before.get(rid) != t}
    assert len(changed) == 2  # the new record and the one whose expectations changed


def test_same_names_stay_apart_and_bulk_reruns_create_nothing(
        mlflow_src: MlflowServer, src_client: TrackingClient, dst_client: TrackingClient, unique: str,
        tmp_path: Path) -> None:
    name = f"twin-{unique}"
    twins = [seed_dataset(mlflow_src.uri, name, [f"twin-exp-{unique}"], tags={"n": str(i)}) for i in range(2)]
    other = seed_dataset(mlflow_src.uri, f"other-{unique}", [])

    outcome = export_evaluation_datasets(src_client, tmp_path, [name, other.name, f"missing-{unique}"])
    assert outcome.phase == "PartiallyFailed"
    assert outcome.failed == [f"evaluation dataset 'missing-{unique}': not found in MLflow at {src_client.uri}"]
    dirs = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert dirs == sorted(fmt.dir_name({"name": d.name, "dataset_id": d.dataset_id}) for d in [*twins, other])
    summary = json.loads((tmp_path / fmt.SUMMARY_FILE).read_text())["mlflow"]
    assert summary["total_datasets"] == 3 and summary["successful_exports"] == 3

    for _ in range(2):
        result = import_evaluation_datasets(dst_client, tmp_path)
        assert result.phase == "Succeeded", result.failed
        imported = Datasets(dst_client).find_by_name(name)
        assert len(imported) == 2
    by_source = {d["tags"][fmt.SOURCE_DATASET_TAG]: d["dataset_id"] for d in imported}
    for twin in twins:
        assert dataset_view(dst_client, by_source[twin.dataset_id]) == dataset_view(src_client, twin.dataset_id)
    assert dataset_view(dst_client, only_import(dst_client, other.name)["dataset_id"]) == \
        dataset_view(src_client, other.dataset_id)


def test_delete_evaluation_dataset_replaces_it(src_client: TrackingClient, dst_client: TrackingClient,
                                               seeded: SeededDataset, tmp_path: Path) -> None:
    export_evaluation_dataset(src_client, tmp_path, dataset_id=seeded.dataset_id)
    import_evaluation_dataset(dst_client, tmp_path, dataset_name=f"{seeded.name}-renamed")
    first = only_import(dst_client, f"{seeded.name}-renamed")["dataset_id"]
    outcome = import_evaluation_dataset(dst_client, tmp_path, dataset_name=f"{seeded.name}-renamed",
                                        delete_dataset=True)
    assert outcome.message.startswith("1 evaluation datasets, 4 records")
    replaced = only_import(dst_client, f"{seeded.name}-renamed")["dataset_id"]
    assert replaced != first
    assert dataset_view(dst_client, replaced) == {**dataset_view(src_client, seeded.dataset_id),
                                                  "name": f"{seeded.name}-renamed"}


def test_commands_with_the_peer_flags(mlflow_src: MlflowServer, mlflow_dst: MlflowServer, src_client: TrackingClient,
                                      dst_client: TrackingClient, seeded: SeededDataset, tmp_path: Path) -> None:
    exp_id = src_client.get_experiment_by_name(seeded.experiments[0])["experiment_id"]
    run = CliRunner().invoke(cli.export_evaluation_datasets, [
        "--output-dir", str(tmp_path), "--evaluation-datasets", "all", "--experiment-ids", exp_id,
        "--use-threads", "True"], env={"MLFLOW_TRACKING_URI": mlflow_src.uri})
    assert run.exit_code == 0, run.output
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == [f"{seeded.name}_{seeded.dataset_id}"]
    run = CliRunner().invoke(cli.import_evaluation_datasets, [
        "--input-dir", str(tmp_path), "--delete-evaluation-dataset", "False"],
        env={"MLFLOW_TRACKING_URI": mlflow_dst.uri})
    assert run.exit_code == 0, run.output
    assert dataset_view(dst_client, only_import(dst_client, seeded.name)["dataset_id"]) == \
        dataset_view(src_client, seeded.dataset_id)

    run = CliRunner().invoke(cli.export_evaluation_dataset, ["--output-dir", str(tmp_path / "x")],
                             env={"MLFLOW_TRACKING_URI": mlflow_src.uri})
    assert run.exit_code == 2 and "give --dataset-name or --dataset-id" in run.output


# -- the peer, mlflow-export-import 1.2.1 ----------------------------------------------------------


@pytest.mark.peer
def test_peer_export_imported_by_us(mlflow_src: MlflowServer, src_client: TrackingClient,
                                    dst_client: TrackingClient, seeded: SeededDataset, tmp_path: Path) -> None:
    peer("export-evaluation-dataset", mlflow_src.uri, "--dataset-id", seeded.dataset_id,
         "--output-dir", str(tmp_path))
    outcome = import_evaluation_dataset(dst_client, tmp_path)
    # The peer writes linked experiments by id only: those links cannot be carried, and say so.
    assert outcome.phase == "PartiallyFailed"
    assert len(outcome.failed) == 2 and all("does not name that experiment" in f for f in outcome.failed)
    dst_id = only_import(dst_client, seeded.name)["dataset_id"]
    assert dataset_view(dst_client, dst_id) == {**dataset_view(src_client, seeded.dataset_id), "experiments": []}

    # Given the names (a whole-server export's experiments.json has them), the links are made too.
    src_ids = Datasets(src_client).experiment_ids(seeded.dataset_id)
    names = {e: src_client.get_experiment(e)["name"] for e in src_ids}
    again = import_evaluation_dataset(dst_client, tmp_path, experiment_names=names)
    assert again.phase == "Succeeded", again.failed
    assert again.message.startswith("1 evaluation datasets, 0 records")
    assert dataset_view(dst_client, dst_id) == dataset_view(src_client, seeded.dataset_id)


@pytest.mark.peer
def test_peer_bulk_export_imported_by_us(mlflow_src: MlflowServer, src_client: TrackingClient,
                                         dst_client: TrackingClient, unique: str, tmp_path: Path) -> None:
    seeded = [seed_dataset(mlflow_src.uri, f"peer-bulk-{i}-{unique}", []) for i in range(2)]
    peer("export-evaluation-datasets", mlflow_src.uri, "--evaluation-datasets", ",".join(d.name for d in seeded),
         "--output-dir", str(tmp_path))
    outcome = import_evaluation_datasets(dst_client, tmp_path)
    assert outcome.phase == "Succeeded", outcome.failed
    for dataset in seeded:
        assert dataset_view(dst_client, only_import(dst_client, dataset.name)["dataset_id"]) == \
            dataset_view(src_client, dataset.dataset_id)


@pytest.mark.peer
def test_our_export_imported_by_the_peer(mlflow_src: MlflowServer, mlflow_dst: MlflowServer,
                                         src_client: TrackingClient, dst_client: TrackingClient, unique: str,
                                         tmp_path: Path) -> None:
    # Without experiment links: the peer links the source's experiment ids as they are on any server.
    seeded = [seed_dataset(mlflow_src.uri, f"to-peer-{i}-{unique}", []) for i in range(2)]
    export_evaluation_dataset(src_client, tmp_path / "one", dataset_id=seeded[0].dataset_id)
    peer("import-evaluation-dataset", mlflow_dst.uri, "--input-dir", str(tmp_path / "one"))
    export_evaluation_datasets(src_client, tmp_path / "bulk", [seeded[1].name])
    peer("import-evaluation-datasets", mlflow_dst.uri, "--input-dir", str(tmp_path / "bulk"))
    for dataset in seeded:
        assert dataset_view(dst_client, only_import(dst_client, dataset.name)["dataset_id"]) == \
            dataset_view(src_client, dataset.dataset_id)


@pytest.mark.peer
def test_peer_export_all_layout_names_the_links(mlflow_src: MlflowServer, src_client: TrackingClient,
                                                dst_client: TrackingClient, seeded: SeededDataset,
                                                tmp_path: Path) -> None:
    # export-all's layout: experiments/ (with experiments.json) beside evaluation_datasets/.
    peer("export-experiments", mlflow_src.uri, "--experiments", ",".join(seeded.experiments),
         "--output-dir", str(tmp_path / "experiments"))
    peer("export-evaluation-datasets", mlflow_src.uri, "--evaluation-datasets", seeded.name,
         "--output-dir", str(tmp_path / "evaluation_datasets"))
    outcome = import_evaluation_datasets(dst_client, tmp_path / "evaluation_datasets")
    assert outcome.phase == "Succeeded", outcome.failed
    dst_id = only_import(dst_client, seeded.name)["dataset_id"]
    assert dataset_view(dst_client, dst_id) == dataset_view(src_client, seeded.dataset_id)
