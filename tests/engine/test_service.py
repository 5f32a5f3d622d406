"""The API Jobs call: export a selection, import whatever the directory holds, report an Outcome."""

from __future__ import annotations

from pathlib import Path

from devstack.mlflow_server import MlflowServer
from ferry.engine.service import export_objects, import_objects
from ferry.options import ExportOptions, ImportOptions, ImportTarget, Renames, Selection
from ferry.progress import Progress
from ferry.tracking import TrackingClient
from tests.engine.seed import Seeded


def test_export_then_import_objects(seeded: Seeded, mlflow_src: MlflowServer, mlflow_dst: MlflowServer,
                                    dst_client: TrackingClient, tmp_path: Path, unique: str) -> None:
    seen: list[Progress] = []
    out = export_objects(mlflow_src.uri, tmp_path, Selection(experiments=[seeded.experiment_name],
                                                             run_ids=[seeded.child]),
                         ExportOptions(include_artifacts=False), workers=2, on_progress=seen.append)
    assert out.phase == "Succeeded", out.failed
    assert (out.counts.experiments, out.counts.runs) == (1, 5)
    assert seen[-1] == Progress(total=5, done=5, failed=0)

    renames = {seeded.experiment_name: f"svc-{unique}"}
    result = import_objects(mlflow_dst.uri, tmp_path, ImportOptions(),
                            ImportTarget(experiment_name=f"svc-runs-{unique}", renames=Renames(experiments=renames)))
    assert result.phase == "Succeeded", result.failed
    assert (result.counts.experiments, result.counts.runs) == (1, 5)
    exp = dst_client.get_experiment_by_name(f"svc-{unique}")
    assert exp is not None and len(list(dst_client.search_runs([exp["experiment_id"]]))) == 4

    single = import_objects(mlflow_dst.uri, tmp_path / "runs" / seeded.child,
                            ImportOptions(), ImportTarget(experiment_name=f"svc-one-{unique}"))
    assert (single.phase, single.counts.runs) == ("Succeeded", 1)


def test_import_objects_rejects_a_directory_that_is_not_an_export(mlflow_dst: MlflowServer, tmp_path: Path) -> None:
    import pytest

    from ferry.errors import InputError

    with pytest.raises(InputError, match="is not an export"):
        import_objects(mlflow_dst.uri, tmp_path, ImportOptions())


def test_check_nested_runs_exports_the_runs_under_a_selected_run(seeded: Seeded, mlflow_src: MlflowServer,
                                                                  src_client: TrackingClient, tmp_path: Path) -> None:
    """``spec.options.checkNestedRuns`` of an MlflowExport: the children of ``runIds`` come along."""
    children = {r["info"]["run_id"] for r in src_client.search_runs(
        [seeded.experiment_id], filter=f"tags.`mlflow.parentRunId` = '{seeded.parent}'")}
    assert children, "the seeded parent has nested runs"
    alone = export_objects(mlflow_src.uri, tmp_path / "alone", Selection(run_ids=[seeded.parent]),
                           ExportOptions(include_artifacts=False))
    assert alone.counts.runs == 1
    nested = export_objects(mlflow_src.uri, tmp_path / "nested", Selection(run_ids=[seeded.parent]),
                            ExportOptions(include_artifacts=False, check_nested_runs=True))
    assert nested.phase == "Succeeded", nested.failed
    exported = {p.name for p in (tmp_path / "nested" / "runs").iterdir()}
    assert exported >= {seeded.parent, *children} and nested.counts.runs == len(exported)
