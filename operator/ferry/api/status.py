"""The status parts the three kinds share, and how a status is written and read back.

Only the operator and its Jobs write status, always through these models: built by keyword (a
misspelt field is a `ValidationError`, not a field the API server silently prunes) and sent as
the merge patch `StatusModel.wire` makes of exactly the fields that were set.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import ConfigDict, Field, ValidationInfo, model_validator
from pydantic.alias_generators import to_camel

from ferry.outcome import Counts, Phase
from ferry.wire import WireModel

STORED = "stored"  # validation context: the model is read back from the API server


class StatusModel(WireModel):
    """A part of a status we write: built by keyword (a misspelt field is an error), read leniently.

    `wire` is a merge patch: exactly the fields that were set, a field set to None removes it,
    and an empty string is sent as None (the 1.20 API server reads "" as null and refuses it).
    `read` takes what the API server holds and ignores fields it does not know (a newer
    operator's), so status written by one version is readable by another.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _ignore_unknown_when_stored(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and info.context and info.context.get(STORED):
            known = {name for name in cls.model_fields} | {f.alias for f in cls.model_fields.values() if f.alias}
            return {key: value for key, value in data.items() if key in known}
        return data

    @classmethod
    def read(cls, data: dict[str, Any] | None) -> Self:
        return cls.model_validate(data or {}, context={STORED: True})

    def wire(self) -> dict[str, Any]:
        """The fields that were set, as a merge patch: a value replaces the stored one whole."""
        nested = self.model_dump(mode="json", by_alias=True, exclude_none=True, include=self.model_fields_set)
        patch: dict[str, Any] = {}
        for name in self.model_fields_set:
            key = type(self).model_fields[name].alias or name
            patch[key] = _without_empty_strings(nested.get(key))
        return patch


def _without_empty_strings(value: Any) -> Any:
    """None for "", recursively dropping such keys inside objects (absent and null read the same)."""
    if isinstance(value, dict):
        return {k: v for k, v in ((k, _without_empty_strings(v)) for k, v in value.items()) if v is not None}
    if isinstance(value, list):
        return [_without_empty_strings(v) for v in value]
    return None if value == "" else value


DateTime = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class Condition(StatusModel):
    """One aspect of the resource's state (Kubernetes metav1.Condition)."""

    type: str = Field(max_length=316, description="Type of the condition: Succeeded, Validated or SpecApplied.")
    status: Literal["True", "False", "Unknown"] = Field(description="Whether the condition holds.")
    reason: str = Field(
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="CamelCase reason for the condition's last change, e.g. JobCreated, Running, "
        "WaitingForExport, Succeeded, InvalidSpec.",
    )
    message: str | None = Field(default=None, max_length=32768, description="Human-readable details.")
    last_transition_time: DateTime = Field(description="When status last changed from one value to another.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation of the resource the condition was set for."
    )


class ProgressStatus(StatusModel):
    """Live progress of the running Job, patched by the Job itself."""

    total: int = Field(
        default=0, description="Objects to carry, as far as known yet; it grows while the Job finds work."
    )
    done: int = Field(default=0, description="Objects carried so far.")
    failed: int = Field(default=0, description="Objects that failed so far.")
    summary: str = Field(default="", description="done/total, for the Progress printer column.")

    @classmethod
    def of(cls, total: int, done: int, failed: int) -> ProgressStatus:
        return cls(total=total, done=done, failed=failed, summary=f"{done}/{total}")


class BaseStatus(StatusModel):
    """What the operator observed; written by the operator (and a running Job's progress)."""

    phase: Phase | None = Field(
        default=None,
        description="Where the work is: Pending (Job created, or waiting for an export or the first scheduled "
        "run), Running, then how it ended: Succeeded, PartiallyFailed (some objects failed), Failed, or "
        "FailedValidation (see validationErrors; no Job is started). On a schedule: the latest run's.",
    )
    conditions: list[Condition] | None = Field(
        default=None,
        description="Succeeded (True: succeeded; False: failed, partly failed or invalid; Unknown: pending or "
        "running), Validated (False while the spec has problems) and, on a started one-shot resource, SpecApplied "
        "(False once a change to its spec was ignored: it cannot change once started).",
    )
    observed_generation: int | None = Field(
        default=None,
        description="metadata.generation of the spec the operator last acted on (validated, or started a Job "
        "for). A one-shot resource does not follow spec changes once its Job started.",
    )
    job_name: str | None = Field(
        default=None, description="Name of the Job doing the work; on a schedule, the latest run's Job."
    )
    start_time: DateTime | None = Field(default=None, description="When the (latest) Job started running.")
    completion_time: DateTime | None = Field(default=None, description="When the (latest) work finished.")
    progress: ProgressStatus | None = Field(
        default=None,
        description="Live progress of the (latest) Job, patched by the Job itself (by default at most every 2 s).",
    )
    counts: Counts | None = Field(default=None, description="Objects the (latest) finished Job carried, by kind.")
    message: str | None = Field(
        default=None, description="Human-readable summary of the current state or of the last result."
    )
    failed: list[str] | None = Field(
        default=None,
        description="Objects that failed in the (latest) finished Job, each with its reason; cut short when "
        "the Job's result does not fit its 4 KB termination message.",
    )
    validation_errors: list[str] | None = Field(
        default=None,
        description="Problems found in the spec, one per line naming the field; set with phase FailedValidation, "
        "cleared once the spec is valid.",
    )


class JobReference(StatusModel):
    """A Job of a scheduled run that has not finished yet."""

    name: str = Field(description="Name of the Job.")
    scheduled_time: DateTime | None = Field(default=None, description="Scheduled time of the run the Job is for.")


class RunResult(StatusModel):
    """The outcome of the last finished scheduled run."""

    phase: Phase = Field(description="How the run ended: Succeeded, PartiallyFailed or Failed.")
    job_name: str = Field(description="Name of the run's Job.")
    scheduled_time: DateTime | None = Field(default=None, description="Scheduled time of the run.")
    completion_time: DateTime | None = Field(default=None, description="When the run finished.")
    counts: Counts | None = Field(default=None, description="Objects the run carried, by kind.")
    message: str | None = Field(default=None, description="Human-readable summary of the run's result.")
    path: str | None = Field(
        default=None,
        description="MlflowExport: the run's export directory, relative to the claim's root; unset if the "
        "run Failed.",
    )


class ScheduleStatus(StatusModel):
    """The schedule's side of the status, as a CronJob's."""

    last_schedule_time: DateTime | None = Field(
        default=None, description="Scheduled time of the latest run a Job was created for."
    )
    last_successful_time: DateTime | None = Field(
        default=None, description="When the latest run that did not fail (Succeeded or PartiallyFailed) finished."
    )
    next_schedule_time: DateTime | None = Field(
        default=None, description="The next scheduled time, as of the operator's latest look."
    )
    active: list[JobReference] | None = Field(default=None, description="Jobs of runs that have not finished yet.")
    last_missed_time: DateTime | None = Field(
        default=None,
        description="When runs were last skipped: the skipped scheduled time (concurrencyPolicy Forbid), or the "
        "time the operator found runs past startingDeadlineSeconds.",
    )
    missed_runs: int | None = Field(
        default=None,
        description="Scheduled runs skipped so far: superseded by a later one (operator away, or suspended), past "
        "startingDeadlineSeconds, or forbidden by concurrencyPolicy.",
    )
    last_result: RunResult | None = Field(default=None, description="The outcome of the latest finished run.")
