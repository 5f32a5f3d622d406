"""MlflowExport: MLflow objects to a directory, once or on a schedule (like a Velero Backup)."""

from __future__ import annotations

from pydantic import Field

from ferry.api.common import (
    CRON_DESCRIPTION,
    ApiModel,
    JobSettings,
    PvcLocation,
    S3Storage,
    ScheduleSpec,
    TrackingServer,
)
from ferry.api.status import BaseStatus, ScheduleStatus
from ferry.options import ExportOptions, Selection


class ExportDestination(ApiModel):
    """Where the export is written: exactly one of pvc and s3."""

    pvc: PvcLocation | None = Field(
        default=None,
        description="Claim and directory to write to, mounted read-write. A scheduled export writes each run to "
        "a new directory <subPath>/<name>-<scheduled time, e.g. 20240131T030000Z>.",
    )
    s3: S3Storage | None = Field(
        default=None,
        description="Bucket and prefix to write to (no volume is mounted). A scheduled export writes each run "
        "under a new prefix <prefix>/<name>-<scheduled time, e.g. 20240131T030000Z>.",
    )


ONE_DESTINATION = {"oneOf": [{"required": ["pvc"]}, {"required": ["s3"]}]}


class MlflowExportSpec(ScheduleSpec):
    """What to export from which tracking server, and where to; with schedule, again on every run."""

    source: TrackingServer = Field(description="The tracking server to export from.")
    objects: Selection = Field(description="What to export; at least one of its lists must name something.")
    options: ExportOptions | None = Field(default=None, description="How to export. Unset: every option's default.")
    destination: ExportDestination = Field(
        json_schema_extra=ONE_DESTINATION, description="Where to write the export: exactly one of pvc and s3."
    )
    schedule: str | None = Field(
        default=None, min_length=1, max_length=128, description=CRON_DESCRIPTION + " Unset: export once."
    )
    keep: int | None = Field(
        default=None,
        ge=1,
        description="Scheduled exports only: after each run that did not fail, keep the newest this many of "
        "this resource's own finished <name>-<time> directories under destination.pvc.subPath (or prefixes "
        "under destination.s3.prefix) and delete older ones; another resource's, an unfinished one and the one "
        "just written are never deleted. Unset: keep all.",
    )
    job: JobSettings | None = Field(
        default=None, description="How the Job is run. Unset fields take the operator's defaults."
    )


class MlflowExportStatus(BaseStatus, ScheduleStatus):
    """The state of the export and, on a schedule, of its runs; written by the operator."""

    path: str | None = Field(
        default=None,
        description="Where the latest export that did not fail is: its directory relative to the claim's root "
        "(unset: the root itself), or s3://<bucket>/<prefix> in object storage; what an MlflowImport's "
        "exportRef reads.",
    )
    claim_name: str | None = Field(
        default=None,
        description="PersistentVolumeClaim that holds the latest export that did not fail (unset for s3).",
    )
