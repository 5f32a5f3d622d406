"""MlflowExport: MLflow objects to a directory, once or on a schedule (like a Velero Backup)."""

from __future__ import annotations

from pydantic import Field

from ferry.api.common import (
    CRON_DESCRIPTION,
    ApiModel,
    JobSettings,
    PvcLocation,
    ScheduleSpec,
    TrackingServer,
)
from ferry.api.status import BaseStatus, ScheduleStatus
from ferry.options import ExportOptions, Selection


class ExportDestination(ApiModel):
    """Where the export is written."""

    pvc: PvcLocation = Field(
        description="Claim and directory to write to, mounted read-write. A scheduled export writes each run to "
        "a new directory <subPath>/<name>-<scheduled time, e.g. 20240131T030000Z>."
    )


class MlflowExportSpec(ScheduleSpec):
    """What to export from which tracking server, and where to; with schedule, again on every run."""

    source: TrackingServer = Field(description="The tracking server to export from.")
    objects: Selection = Field(description="What to export; at least one of its lists must name something.")
    options: ExportOptions | None = Field(default=None, description="How to export. Unset: every option's default.")
    destination: ExportDestination = Field(description="Where to write the export.")
    schedule: str | None = Field(
        default=None, min_length=1, max_length=128, description=CRON_DESCRIPTION + " Unset: export once."
    )
    keep: int | None = Field(
        default=None,
        ge=1,
        description="Scheduled exports only: after each run that did not fail, keep the newest this many "
        "<name>-<time> directories under destination.pvc.subPath and delete older ones. Unset: keep all.",
    )
    job: JobSettings | None = Field(
        default=None, description="How the Job is run. Unset fields take the operator's defaults."
    )


class MlflowExportStatus(BaseStatus, ScheduleStatus):
    """The state of the export and, on a schedule, of its runs; written by the operator."""

    path: str | None = Field(
        default=None,
        description="Directory of the latest export that did not fail, relative to the claim's root "
        "(unset: the root itself); what an MlflowImport's exportRef reads.",
    )
    claim_name: str | None = Field(
        default=None, description="PersistentVolumeClaim that holds the latest export that did not fail."
    )
