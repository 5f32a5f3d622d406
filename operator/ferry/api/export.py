"""MlflowExport: MLflow objects to a directory, once or on a schedule (like a Velero Backup)."""

from __future__ import annotations

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
from ferry.options import ExportOptions, Selection


class ExportDestination(ApiModel):
    pvc: PvcLocation


class MlflowExportSpec(ScheduleSpec):
    source: TrackingServer
    objects: Selection
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
