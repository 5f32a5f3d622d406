"""Run export/import against the real servers: every field compared, idempotency, parents."""

from __future__ import annotations

import json
from pathlib import Path

from ferry.engine.runs import IMPORT_COMPLETE_TAG, SOURCE_RUN_ID_TAG, export_run, import_run
from ferry.tracking import ArtifactStore, TrackingClient, tags_of
from tests.engine.conftest import Pair
from tests.engine.seed import Seeded, mlmodel_text, run_view


def test_run_round_trip_is_field_by_field_equal(pair: Pair, pair_seeded: Seeded, tmp_path: Path,
                                                unique: str) -> None:
    seeded, src_client, dst_client = pair_seeded, pair.src_client, pair.dst_client
    exp = dst_client.get_or_create_experiment(f"runs-{unique}")
    for src_id in (seeded.parent, seeded.big, seeded.failed):
        exported = export_run(src_client, src_id, tmp_path / src_id)
        assert exported.nbytes >= 0 and (tmp_path / src_id / "run.json").is_file()
        imported = import_run(dst_client, tmp_path / src_id, exp["experiment_id"], use_src_user_id=True)
        assert run_view(dst_client, imported.dst_run_id) == run_view(src_client, src_id)
        dst = dst_client.get_run(imported.dst_run_id)
        assert dst["info"]["user_id"] == src_client.get_run(src_id)["info"]["user_id"]
        assert tags_of(dst["data"])[SOURCE_RUN_ID_TAG] == src_id
        assert tags_of(dst["data"])[IMPORT_COMPLETE_TAG] == "true"


def test_run_json_has_the_peer_format(seeded: Seeded, src_client: TrackingClient, tmp_path: Path) -> None:
    export_run(src_client, seeded.big, tmp_path)
    doc = json.loads((tmp_path / "run.json").read_text())
    assert doc["system"]["export_file_version"] == "2"
    mlflow = doc["mlflow"]
    assert mlflow["info"]["run_id"] == seeded.big and mlflow["info"]["_start_time"]
    assert len(mlflow["params"]) == 150 and mlflow["params"]["p007"] == "value-7"
    assert len(mlflow["metrics"]["loss"]) == 1200
    assert set(mlflow["metrics"]["loss"][0]) == {"value", "timestamp", "step"}
    assert mlflow["tags"]["t005"] == "tag-5"
    assert "dataset_inputs" in mlflow["inputs"]


def test_mlmodel_run_id_is_rewritten_and_import_is_idempotent(seeded: Seeded, src_client: TrackingClient,
                                                               dst_client: TrackingClient, tmp_path: Path,
                                                               unique: str) -> None:
    exp = dst_client.get_or_create_experiment(f"mlmodel-{unique}")
    export_run(src_client, seeded.parent, tmp_path)
    first = import_run(dst_client, tmp_path, exp["experiment_id"])
    again = import_run(dst_client, tmp_path, exp["experiment_id"])
    assert again.skipped and again.dst_run_id == first.dst_run_id
    assert len(list(dst_client.search_runs([exp["experiment_id"]], run_view_type="ALL"))) == 1
    dst = dst_client.get_run(first.dst_run_id)
    mlmodel = ArtifactStore(dst_client, dst["info"]["artifact_uri"]).read_bytes("model/MLmodel").decode()
    assert mlmodel == mlmodel_text(first.dst_run_id)


def test_half_imported_run_is_replaced_not_duplicated(seeded: Seeded, src_client: TrackingClient,
                                                       dst_client: TrackingClient, tmp_path: Path, unique: str) -> None:
    exp = dst_client.get_or_create_experiment(f"partial-{unique}")
    export_run(src_client, seeded.child, tmp_path)
    # What a killed import leaves: the run created and tagged with its source, never completed.
    dst_client.create_run(exp["experiment_id"], tags={SOURCE_RUN_ID_TAG: seeded.child})
    done = import_run(dst_client, tmp_path, exp["experiment_id"])
    active = list(dst_client.search_runs([exp["experiment_id"]]))
    assert [r["info"]["run_id"] for r in active] == [done.dst_run_id]


def test_single_run_import_finds_an_imported_parent(seeded: Seeded, src_client: TrackingClient,
                                                    dst_client: TrackingClient, tmp_path: Path, unique: str) -> None:
    exp = dst_client.get_or_create_experiment(f"nested-{unique}")
    export_run(src_client, seeded.parent, tmp_path / "p")
    export_run(src_client, seeded.child, tmp_path / "c")
    parent = import_run(dst_client, tmp_path / "p", exp["experiment_id"])
    child = import_run(dst_client, tmp_path / "c", exp["experiment_id"])
    assert tags_of(dst_client.get_run(child.dst_run_id)["data"])["mlflow.parentRunId"] == parent.dst_run_id
