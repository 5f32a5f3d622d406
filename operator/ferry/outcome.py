"""What a finished piece of work reports: the Job's termination message and the CLI's summary.

One model for both engines, so the operator can read any Job's result without knowing which
engine ran. Kept small: Kubernetes truncates a termination message at 4096 bytes.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Phase = Literal["Succeeded", "PartiallyFailed", "Failed"]


class Counts(BaseModel):
    experiments: int = 0
    runs: int = 0
    models: int = 0
    versions: int = 0
    bytes: int = 0


class Outcome(BaseModel):
    phase: Phase = "Succeeded"
    counts: Counts = Field(default_factory=Counts)
    failed: list[str] = Field(default_factory=list, description="The objects that failed, each with its reason.")
    message: str = ""
    path: str | None = Field(default=None, description="Where the export was written, if anything was.")
    watermark: int | None = Field(default=None, description="Kiroframe sync: the next incremental start (ms).")

    def to_termination_message(self, limit: int = 4000) -> str:
        """JSON that fits a termination message; failures are cut from the end first."""
        data = self.model_copy(deep=True)
        text = data.model_dump_json(exclude_none=True)
        while len(text.encode()) > limit and data.failed:
            data.failed = data.failed[: len(data.failed) // 2]
            text = data.model_dump_json(exclude_none=True)
        if len(text.encode()) > limit:
            data.message = data.message[:500]
            text = data.model_dump_json(exclude_none=True)
        return text
