"""What to export and how to import: the engine's options, shared by the CLIs and the Job runner.

Field names follow the CLI flags (snake_case); the operator maps its resources' camelCase spec
onto these.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Selection(BaseModel):
    """Objects to export. ``"*"`` (or ``"all"``) in `experiments` or `models` means all of them."""

    model_config = ConfigDict(extra="forbid")

    experiments: list[str] = Field(default_factory=list, description="Experiment names or ids.")
    run_ids: list[str] = Field(default_factory=list)
    models: list[str] = Field(default_factory=list, description="Registered model names.")
    model_versions: list[tuple[str, str]] = Field(default_factory=list, description="(model, version) pairs.")


class ExportOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_start_time: str | int | None = None
    export_deleted_runs: bool = False
    check_nested_runs: bool = False
    stages: list[str] = Field(default_factory=list)
    versions: list[str] = Field(default_factory=list)
    export_latest_versions: bool = False
    export_version_model: bool = False
    include_artifacts: bool = True


class ImportOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    import_source_tags: bool = False
    use_src_user_id: bool = False
    delete_model: bool = False
    create_model: bool = True
    import_stages_and_aliases: bool = True
    import_metadata: bool = True
    mlmodel_fix: bool = True
    await_creation_for: int | None = None
    experiment_name: str | None = Field(default=None, description="Import every run/experiment under this name.")
    model_name: str | None = Field(default=None, description="Import the model (version) under this name.")
