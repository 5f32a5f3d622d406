"""KiroframeSync: MLflow metadata pushed to Kiroframe on a cron schedule, incrementally."""

from __future__ import annotations

from pydantic import Field

from ferry.api.common import (
    CRON_DESCRIPTION,
    HTTP_URL,
    ApiModel,
    BaseStatus,
    JobSettings,
    ScheduleSpec,
    ScheduleStatus,
    SecretKeyRef,
    TrackingServer,
)
from ferry.options import KiroframeOptions


class KiroframeTarget(ApiModel):
    url: str = Field(pattern=HTTP_URL, max_length=2048, description="Kiroframe base URL.")
    token_secret: SecretKeyRef = Field(description="Secret key holding the profiling token.")


class KiroframeSyncSpec(ScheduleSpec):
    source: TrackingServer
    kiroframe: KiroframeTarget
    schedule: str = Field(min_length=1, max_length=128, description=CRON_DESCRIPTION)
    options: KiroframeOptions | None = None
    job: JobSettings | None = None


class KiroframeSyncStatus(BaseStatus, ScheduleStatus):
    watermark: int | None = Field(default=None, description="Start of the next incremental sync (ms).")
