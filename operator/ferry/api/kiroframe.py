"""KiroframeSync: MLflow metadata pushed to Kiroframe on a cron schedule, incrementally."""

from __future__ import annotations

from pydantic import Field

from ferry.api.common import (
    CRON_DESCRIPTION,
    ApiModel,
    JobSettings,
    ScheduleSpec,
    SecretKeyRef,
    TrackingServer,
)
from ferry.api.status import BaseStatus, ScheduleStatus
from ferry.options import KiroframeOptions
from ferry.urls import HTTP_URL, URL_RULE


class KiroframeTarget(ApiModel):
    """The Kiroframe instance the metadata is sent to."""

    url: str = Field(
        pattern=HTTP_URL,
        max_length=2048,
        description=f"Kiroframe base URL: {URL_RULE}; records are posted to <url>/arcee/v2/import.",
    )
    token_secret: SecretKeyRef = Field(
        description="Secret key holding the Kiroframe profiling token, passed to the Job as KIROFRAME_TOKEN."
    )


class KiroframeSyncSpec(ScheduleSpec):
    """Which tracking server to send to which Kiroframe, on which schedule."""

    source: TrackingServer = Field(description="The tracking server whose metadata is sent.")
    kiroframe: KiroframeTarget = Field(description="Where the metadata is sent.")
    schedule: str = Field(min_length=1, max_length=128, description=CRON_DESCRIPTION)
    options: KiroframeOptions | None = Field(
        default=None, description="What each sync sends. Unset: every option's default."
    )
    job: JobSettings | None = Field(
        default=None, description="How each run's Job is run. Unset fields take the operator's defaults."
    )


class KiroframeSyncStatus(BaseStatus, ScheduleStatus):
    """The state of the schedule and of its latest run; written by the operator."""

    watermark: int | None = Field(
        default=None,
        description="Milliseconds since the epoch at which the latest sync that did not fail began reading "
        "MLflow; an incremental sync sends runs that started or ended since then, plus running ones. "
        "Unset: the next sync sends everything.",
    )
