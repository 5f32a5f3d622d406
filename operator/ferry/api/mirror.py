"""MlflowMirror: a standby MLflow tracking server kept in step with a primary, on a cron schedule.

Each run is one incremental sync, server to server (no export directory in between): what changed
at the source since the watermark of the last sync that did not fail, plus, every
``options.fullCompareEvery``, a comparison of everything. For a cut-over, the annotation
``ferry.dev/sync-now`` starts one run at once, without waiting for the schedule.
"""

from __future__ import annotations

from pydantic import Field

from ferry.api.common import CRON_DESCRIPTION, JobSettings, ScheduleSpec, TrackingServer
from ferry.api.status import BaseStatus, DateTime, ScheduleStatus
from ferry.options import MirrorObjects, MirrorOptions, Renames

SYNC_NOW_ANNOTATION = "ferry.dev/sync-now"
"""Set it (any non-empty value) on a mirror to start one run at once; each new value starts one more."""

SYNC_NOW = (
    f"Setting the annotation {SYNC_NOW_ANNOTATION} (any non-empty value, e.g. a timestamp) starts one run at the operator's "
    "next look (every few seconds), even while suspend is true, under concurrencyPolicy (Forbid: it starts once "
    "the active run has finished); each new value starts one more run, like `kubectl create job --from=cronjob/...`."
)


class MlflowMirrorSpec(ScheduleSpec):
    """Which tracking server to keep in step with which, what of it, and on which schedule."""

    source: TrackingServer = Field(
        description="The primary tracking server, read only. Its credentialsSecret's keys reach the Job prefixed "
        "with SRC_ (e.g. SRC_MLFLOW_TRACKING_TOKEN), so they cannot collide with the destination's."
    )
    destination: TrackingServer = Field(
        description="The standby tracking server that receives the copies; it must not be the source. Its "
        "credentialsSecret's keys reach the Job prefixed with DST_ (e.g. DST_MLFLOW_TRACKING_PASSWORD)."
    )
    objects: MirrorObjects | None = Field(
        default=None, description="What is kept in step. Unset: every experiment, registered model and prompt."
    )
    renames: Renames | None = Field(
        default=None,
        description="Names at the destination by source name prefix (experiments, registered models). Unset: "
        "the source's names.",
    )
    schedule: str = Field(
        min_length=1, max_length=128,
        description=f"{CRON_DESCRIPTION} Each scheduled time starts one sync. {SYNC_NOW}",
    )  # fmt: skip
    options: MirrorOptions | None = Field(
        default=None, description="How each sync copies. Unset: every option's default."
    )
    job: JobSettings | None = Field(
        default=None, description="How each run's Job is run. Unset fields take the operator's defaults."
    )


class MlflowMirrorStatus(BaseStatus, ScheduleStatus):
    """The state of the schedule, of its latest run and of the standby; written by the operator."""

    watermark: int | None = Field(
        default=None,
        description="Milliseconds since the epoch up to which source changes are known to be copied: the next "
        "sync copies what changed since then. Kept when a sync fails. Unset: the next sync compares everything.",
    )
    last_sync_time: DateTime | None = Field(
        default=None,
        description="When the latest sync that did not fail (Succeeded or PartiallyFailed) finished. Alert when it "
        "is older than a few schedule periods.",
    )
    lag_seconds: int | None = Field(
        default=None, ge=0,
        description="How far the standby is behind, as of the latest sync: the age in seconds of the oldest source "
        "change not copied (0: in step). After a sync that did not fail, the engine's own measure when the sync "
        "ended; after a Failed sync, its completion time minus the watermark (nothing after the watermark is known "
        "to be copied). Before a cut-over, wait for 0 after a sync started once writes to the source stopped.",
    )  # fmt: skip
    last_full_compare_time: DateTime | None = Field(
        default=None,
        description="When the latest sync that compared every mirrored object with its copy began; the next "
        "comparison is due options.fullCompareEvery later. Unset: none yet (the first sync compares everything).",
    )
    last_sync_request: str | None = Field(
        default=None,
        description=f"The value of the annotation {SYNC_NOW_ANNOTATION} whose run was started last; a different "
        "value starts another run.",
    )
