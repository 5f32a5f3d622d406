"""Building blocks the three custom resources share: Job settings, references, status parts.

Every field is camelCase on the wire (``alias_generator``) and snake_case in Python, so the same
model validates what a user applied, renders the CRD schema and serialises the status we patch.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import ConfigDict, Field, ValidationInfo, model_validator
from pydantic.alias_generators import to_camel

from ferry.outcome import Counts, Phase
from ferry.wire import WireModel

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# A relative path inside a volume (Go's RE2 has no look-ahead: the operator refuses `..` itself).
RELATIVE_PATH = r"^([^/].*)?$"
TRACKING_URI = r"^(https?://[^/\s]+\S*|databricks(://\S*)?)$"
HTTP_URL = r"^https?://[^/\s]+\S*$"

PRESERVE_UNKNOWN = {"x-kubernetes-preserve-unknown-fields": True}


ApiModel = WireModel
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


Name = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)]


class SecretRef(ApiModel):
    """A Secret in the resource's namespace whose keys become the Job's environment."""

    name: Name = Field(description="Name of the Secret; each key becomes an environment variable of the Job.")


class SecretKeyRef(ApiModel):
    """One key of a Secret in the resource's namespace."""

    name: Name = Field(description="Name of the Secret.")
    key: str = Field(default="token", min_length=1, max_length=253, description="Key inside the Secret.")


class TrackingServer(ApiModel):
    """An MLflow tracking server; credentials only by reference, never inline."""

    tracking_uri: str = Field(
        pattern=TRACKING_URI,
        max_length=2048,
        description="Tracking URI (http(s)://host[:port][/path] or databricks). No credentials in it.",
    )
    credentials_secret: SecretRef | None = Field(
        default=None,
        description="Secret with MLFLOW_TRACKING_TOKEN, MLFLOW_TRACKING_USERNAME/PASSWORD or "
        "DATABRICKS_HOST/TOKEN keys, passed to the Job as environment.",
    )


class PvcLocation(ApiModel):
    """A directory on a PersistentVolumeClaim in the resource's namespace."""

    claim_name: Name = Field(description="Name of the PersistentVolumeClaim.")
    sub_path: str = Field(
        default="",
        max_length=1024,
        pattern=RELATIVE_PATH,
        description="Directory inside the claim (relative, no '..'); empty means the claim's root.",
    )


class Toleration(ApiModel):
    key: str | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None


Quantity = Annotated[int | str, Field(description="A Kubernetes quantity, e.g. 500m or 1Gi.")]


class Resources(ApiModel):
    limits: dict[str, Quantity] | None = Field(default=None, description="Resource limits of the Job's container.")
    requests: dict[str, Quantity] | None = Field(default=None, description="Resource requests of the Job's container.")


class EnvVar(ApiModel):
    """An extra environment variable for the Job (Kubernetes EnvVar shape)."""

    name: str = Field(min_length=1, description="Variable name.")
    value: str | None = Field(default=None, description="Literal value; do not put secrets here, use valueFrom.")
    value_from: dict[str, Any] | None = Field(
        default=None, json_schema_extra=PRESERVE_UNKNOWN, description="A Kubernetes EnvVarSource."
    )


class JobSettings(ApiModel):
    """How the Job that does the work is run; anything unset takes the operator's default."""

    image: str | None = Field(default=None, min_length=1, description="Container image; default: the operator's.")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    resources: Resources | None = None
    backoff_limit: int | None = Field(default=None, ge=0, le=20, description="Retries of a failed pod.")
    active_deadline_seconds: int | None = Field(
        default=None, ge=1, description="Wall-clock limit of the Job; it fails with DeadlineExceeded after it."
    )
    ttl_seconds_after_finished: int | None = Field(
        default=None, ge=0, description="Seconds a finished Job is kept before Kubernetes deletes it."
    )
    service_account_name: str | None = Field(
        default=None, pattern=DNS_SUBDOMAIN, description="ServiceAccount of the Job; default: the operator's."
    )
    node_selector: dict[str, str] | None = None
    tolerations: list[Toleration] | None = None
    env: list[EnvVar] | None = Field(default=None, description="Extra environment of the Job's container.")


class ScheduleSpec(ApiModel):
    """Cron-style scheduling, as in a Kubernetes CronJob, run by the operator itself."""

    time_zone: str | None = Field(
        default=None, max_length=64, description="IANA time zone the schedule is read in (default UTC)."
    )
    suspend: bool = Field(default=False, description="Stop starting new runs; running ones continue.")
    concurrency_policy: Literal["Allow", "Forbid", "Replace"] = Field(
        default="Forbid", description="What to do when a run is due while the previous one still runs."
    )
    starting_deadline_seconds: int | None = Field(
        default=None,
        ge=1,
        description="A run not started within this many seconds of its time is counted as missed and skipped.",
    )
    successful_jobs_history_limit: int = Field(default=3, ge=0, le=100, description="Finished Jobs kept.")
    failed_jobs_history_limit: int = Field(default=1, ge=0, le=100, description="Failed Jobs kept.")


CRON_DESCRIPTION = (
    "Cron expression (5 fields, or 6 with seconds last), e.g. '0 3 * * *'; read in timeZone."
)

# --- status -------------------------------------------------------------------------------------

DateTime = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class Condition(StatusModel):
    """metav1.Condition."""

    type: str = Field(max_length=316)
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    message: str | None = Field(default=None, max_length=32768)
    last_transition_time: DateTime
    observed_generation: int | None = Field(default=None, ge=0)


class ProgressStatus(StatusModel):
    """Live progress of the running Job, patched by the Job itself."""

    total: int = Field(default=0, description="Objects to carry, as far as known yet.")
    done: int = Field(default=0, description="Objects carried.")
    failed: int = Field(default=0, description="Objects that failed.")
    summary: str = Field(default="", description="done/total, for the printer column.")

    @classmethod
    def of(cls, total: int, done: int, failed: int) -> ProgressStatus:
        return cls(total=total, done=done, failed=failed, summary=f"{done}/{total}")


class BaseStatus(StatusModel):
    phase: Phase | None = None
    conditions: list[Condition] | None = None
    observed_generation: int | None = None
    job_name: str | None = None
    start_time: DateTime | None = None
    completion_time: DateTime | None = None
    progress: ProgressStatus | None = None
    counts: Counts | None = None
    message: str | None = None
    failed: list[str] | None = Field(default=None, description="Objects that failed, each with its reason.")
    validation_errors: list[str] | None = None


class JobReference(StatusModel):
    name: str
    scheduled_time: DateTime | None = None


class RunResult(StatusModel):
    """The outcome of the last finished scheduled run."""

    phase: Phase
    job_name: str
    scheduled_time: DateTime | None = None
    completion_time: DateTime | None = None
    counts: Counts | None = None
    message: str | None = None
    path: str | None = None


class ScheduleStatus(StatusModel):
    last_schedule_time: DateTime | None = None
    last_successful_time: DateTime | None = None
    next_schedule_time: DateTime | None = None
    active: list[JobReference] | None = None
    last_missed_time: DateTime | None = Field(default=None, description="Latest scheduled time that was skipped.")
    missed_runs: int | None = Field(
        default=None, description="Runs skipped: past startingDeadlineSeconds, or forbidden by concurrencyPolicy."
    )
    last_result: RunResult | None = None
