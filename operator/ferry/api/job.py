"""What the operator hands to a Job: the one JSON document `ferry job` reads (env ``FERRY_JOB``).

It carries the resource's identity (so the Job can patch its own ``status.progress``), its spec
as applied (only references to secrets, never values), and what the operator resolved for this
run: paths inside the mounted volume (or the bucket location), the Kiroframe watermark, the
scheduled time.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ferry.api.common import ApiModel
from ferry.storage.location import S3Location

ENV_VAR = "FERRY_JOB"
DATA_DIR = "/data"
SCRATCH_DIR = "/tmp"
TERMINATION_LOG = "/dev/termination-log"
KIROFRAME_TOKEN_ENV = "KIROFRAME_TOKEN"


class JobPayload(ApiModel):
    kind: str
    name: str
    namespace: str
    spec: dict[str, Any]
    output_path: str | None = Field(default=None, description="Export: directory to write (inside the container).")
    input_path: str | None = Field(default=None, description="Import: directory to read (inside the container).")
    storage: S3Location | None = Field(
        default=None,
        description="Object storage instead of a volume: where the export writes (this run's prefix resolved) or "
        "the import reads; outputPath / inputPath then hold its s3:// URL. Credentials come from the environment.",
    )
    keep: int | None = Field(default=None, description="Scheduled export: sibling export directories to retain.")
    watermark: int | None = Field(
        default=None, description="KiroframeSync, MlflowMirror: start of this incremental sync (ms)."
    )
    last_full_compare: int | None = Field(
        default=None, description="MlflowMirror: when the latest full comparison began (ms); unset: never."
    )
    scheduled_time: str | None = None
