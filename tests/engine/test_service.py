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


def test_a_resource_export_carries_prompts_and_evaluation_datasets(mlflow_src: MlflowServer, mlflow_dst: MlflowServer,
                                                                   src_client: TrackingClient,
                                                                   dst_client: TrackingClient, tmp_path: Path,
                                                                   unique: str) -> None:
    """``spec.objects.prompts`` / ``evaluationDatasets`` of an MlflowExport, and an MlflowImport of that export."""
    from ferry.tracking.datasets import Datasets
    from tests.engine.evaluation_dataset_seed import dataset_view, seed_dataset
    from tests.engine.prompt_seed import prompt_view, seed_prompts

    prompts = seed_prompts(mlflow_src.uri, f"svc-{unique}-")
    dataset = seed_dataset(mlflow_src.uri, f"svc-ds-{unique}", [f"svc-ds-exp-{unique}"])
    selection = Selection(prompts=[prompts.text, prompts.chat], evaluation_datasets=[dataset.name])
    out = export_objects(mlflow_src.uri, tmp_path, selection, ExportOptions())
    assert out.phase == "Succeeded", out.failed
    assert (out.counts.prompts, out.counts.prompt_versions, out.counts.evaluation_datasets) == (2, 13, 1)
    done = import_objects(mlflow_dst.uri, tmp_path, ImportOptions())
    assert done.phase == "Succeeded", done.failed
    assert (done.counts.prompts, done.counts.evaluation_datasets) == (2, 1)
    for name in (prompts.text, prompts.chat):
        assert prompt_view(mlflow_dst.uri, name) == prompt_view(mlflow_src.uri, name)
    (copy,) = Datasets(dst_client).find_by_name(dataset.name)
    assert dataset_view(dst_client, copy["dataset_id"]) == dataset_view(src_client, dataset.dataset_id)
    again = import_objects(mlflow_dst.uri, tmp_path, ImportOptions())
    assert again.phase == "Succeeded" and again.counts.prompt_versions == 0
