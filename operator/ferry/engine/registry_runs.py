"""What the registry code needs from runs: export a version's run, import it, fetch its model files.

One narrow seam over `ferry.engine.runs`, so that models and versions do not depend on the run
engine's options beyond the few they set.
"""

from __future__ import annotations

from pathlib import Path

from ferry.engine import runs
from ferry.engine.registry_format import JsonDict, model_id_of
from ferry.engine.workspace_objects import WorkspaceExport
from ferry.tracking.artifacts import ArtifactStore
from ferry.tracking.client import TrackingClient


def export_version_run(client: TrackingClient, run_id: str, output_dir: Path | None, *,
                       export_deleted: bool, workspace: WorkspaceExport | None = None) -> JsonDict | None:
    """The run, exported into `output_dir` unless None; None if it is deleted and `export_deleted` is off.

    With `workspace`, the run's notebook is exported with it (`ferry.engine.workspace_objects`).
    """
    run = client.get_run(run_id)
    if run["info"].get("lifecycle_stage") == "deleted" and not export_deleted:
        return None
    if output_dir is not None:
        runs.export_run(client, run, output_dir, workspace=workspace)
    return run


def import_version_run(client: TrackingClient, run_dir: Path, experiment_name: str, *,
                       import_source_tags: bool) -> JsonDict:
    """Import the run exported in `run_dir` (reused if imported before); returns the destination run."""
    experiment = client.get_or_create_experiment(experiment_name)
    imported = runs.import_run(client, run_dir, experiment["experiment_id"], import_source_tags=import_source_tags)
    return client.get_run(imported.dst_run_id)


def download_model(client: TrackingClient, version: JsonDict, dest: Path) -> int:
    """Copy the files a version's source points to into `dest` (``--export-version-model``)."""
    source = str(version.get("source") or "")
    model_id = model_id_of(version)
    if model_id:
        source = client.get_logged_model(model_id)["info"]["artifact_uri"]
    return ArtifactStore(client, source).download_tree(dest)[1]
