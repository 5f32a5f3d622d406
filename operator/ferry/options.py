"""What to export and how to import: the engine's options, which are also the resources' options.

One declaration serves three readers: the CLIs build these models from their flags (snake_case
names, the flags' defaults), the resources embed them (camelCase on the wire, so
``spec.options.exportDeletedRuns`` is ``--export-deleted-runs``), and the Job runner hands the
validated spec's models to the engine unchanged. Nothing here knows Kubernetes or MLflow.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ferry.wire import WireModel

Stage = Literal["None", "Staging", "Production", "Archived"]
ALL = ("*", "all")


class ModelVersionRef(WireModel):
    model: str = Field(min_length=1, description="Registered model name.")
    version: str = Field(pattern=r"^[1-9][0-9]*$", description="Version number.")


class Selection(WireModel):
    """What to export; '*' (or 'all') in a list of names means all of that kind."""

    experiments: list[str] = Field(default_factory=list, description="Experiment names or ids, or '*'.")
    run_ids: list[str] = Field(default_factory=list, description="Single runs by id.")
    models: list[str] = Field(default_factory=list, description="Registered model names, or '*'.")
    model_versions: list[ModelVersionRef] = Field(default_factory=list, description="Single model versions.")

    @property
    def empty(self) -> bool:
        return not (self.experiments or self.run_ids or self.models or self.model_versions)


class ExportOptions(WireModel):
    """How to export; each field is the export commands' flag of the same name."""

    run_start_time: str | None = Field(
        default=None, description="Only runs started at or after this time (ISO 8601, e.g. 2024-01-31, or epoch ms)."
    )
    export_deleted_runs: bool = Field(default=False, description="Also export deleted runs (kept deleted on import).")
    check_nested_runs: bool = Field(default=False, description="Also export the children of exported runs.")
    stages: list[Stage] = Field(
        default_factory=list, description="Only model versions in these stages (excludes 'versions')."
    )
    versions: list[str] = Field(default_factory=list, description="Only these model versions (excludes 'stages').")
    export_latest_versions: bool = Field(
        default=False, description="Only the latest version of each stage instead of every version."
    )
    export_version_model: bool = Field(default=False, description="Also export each version's MLmodel artifacts.")
    include_artifacts: bool = Field(
        default=True, description="Export the runs' artifacts; off exports metadata only (no command has this flag)."
    )


class ImportOptions(WireModel):
    """How to import; each field is the import commands' flag of the same name."""

    import_source_tags: bool = Field(
        default=False, description="Record the source objects' fields as 'mlflow_exim.*' tags on the imported ones."
    )
    use_src_user_id: bool = Field(default=False, description="Set each run's user to the source run's user.")
    delete_model: bool = Field(default=False, description="Delete the destination model first.")
    create_model: bool = Field(default=True, description="Create the destination model when it does not exist.")
    import_stages_and_aliases: bool = Field(default=True, description="Give imported versions their stages and aliases.")
    import_metadata: bool = Field(default=True, description="Give imported versions their tags and descriptions.")
    mlmodel_fix: bool = Field(default=True, description="Point the imported MLmodel files' run_id at the new run.")
    await_creation_for: int | None = Field(
        default=None, ge=0, le=3600, description="Seconds to wait for each model version to become READY."
    )


class Renames(WireModel):
    experiments: dict[str, str] = Field(default_factory=dict, description="Source name -> destination name.")
    models: dict[str, str] = Field(default_factory=dict, description="Source name -> destination name.")


class ImportTarget(WireModel):
    """Where in the destination the imported objects go; unset keeps the source names."""

    experiment_name: str | None = Field(default=None, min_length=1, description="Import all runs into this experiment.")
    model_name: str | None = Field(default=None, min_length=1, description="Import the model under this name.")
    renames: Renames | None = Field(default=None, description="Renames of experiments and models.")


class KiroframeOptions(WireModel):
    """What a Kiroframe sync sends; each field is kiroframe-importer's flag of the same name."""

    export_models: bool = Field(default=True, description="Send the registered models too.")
    include_schema_profile: bool = Field(
        default=False, description="Send dataset schemas and profiles (the command's default is on: they are large)."
    )
    download_artifacts: bool = Field(default=False, description="Send the runs' artifact files too.")
    experiment_page_size: int = Field(default=200, ge=1, le=1000, description="Experiments read per request.")
    run_page_size: int = Field(default=1000, ge=1, le=10000, description="Runs read per request.")
    incremental: bool = Field(
        default=True, description="Only runs changed since the last sync's watermark (the command's default is a full sync)."
    )
