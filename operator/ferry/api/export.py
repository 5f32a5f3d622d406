"""MlflowExport: MLflow objects to a directory, once or on a schedule (like a Velero Backup)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ferry.api.common import (
    CRON_DESCRIPTION,
    ApiModel,
    BaseStatus,
    JobSettings,
    PvcLocation,
    ScheduleSpec,
    ScheduleStatus,
    TrackingServer,
)


class ModelVersionRef(ApiModel):
    model: str = Field(min_length=1, description="Registered model name.")
    version: str = Field(pattern=r"^[1-9][0-9]*$", description="Version number.")


class ExportObjects(ApiModel):
    """What to export; '*' in a list means all of that kind."""

    experiments: list[str] = Field(default_factory=list, description="Experiment names or ids, or '*'.")
    run_ids: list[str] = Field(default_factory=list, description="Single runs by id.")
    models: list[str] = Field(default_factory=list, description="Registered model names, or '*'.")
    model_versions: list[ModelVersionRef] = Field(default_factory=list, description="Single model versions.")


class ExportOptions(ApiModel):
    run_start_time: str | None = Field(
        default=None, description="Only runs started at or after this time (ISO 8601, e.g. 2024-01-31)."
    )
    export_deleted_runs: bool = False
    check_nested_runs: bool = Field(default=False, description="Also export the children of exported runs.")
    stages: list[Literal["None", "Staging", "Production", "Archived"]] = Field(
        default_factory=list, description="Only model versions in these stages (excludes 'versions')."
    )
    versions: list[str] = Field(default_factory=list, description="Only these model versions (excludes 'stages').")
    export_latest_versions: bool = False
    export_version_model: bool = Field(default=False, description="Also export each version's MLmodel artifacts.")
    include_artifacts: bool = True


class ExportDestination(ApiModel):
    pvc: PvcLocation


class MlflowExportSpec(ScheduleSpec):
    source: TrackingServer
    objects: ExportObjects
    options: ExportOptions | None = None
    destination: ExportDestination
    schedule: str | None = Field(
        default=None, min_length=1, max_length=128, description=CRON_DESCRIPTION + " Unset: export once."
    )
    keep: int | None = Field(
        default=None, ge=1, description="Scheduled exports: how many export directories to retain."
    )
    job: JobSettings | None = None


class MlflowExportStatus(BaseStatus, ScheduleStatus):
    path: str | None = Field(default=None, description="Directory of the export inside the claim.")
    claim_name: str | None = Field(default=None, description="Claim that holds the export.")
