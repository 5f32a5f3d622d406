"""Everything a sync needs, read from kiroframe-importer's environment variables.

Users of kiroframe-importer already export ``TRACKING_URI``, ``KIROFRAME_URL``,
``PROFILING_TOKEN`` and friends; reading the same names means their scripts and Secrets work
unchanged. The command line passes its flags as init arguments, which pydantic-settings ranks
above the environment (CLI wins, as in the original). The required three are optional here so
that a missing one is reported together with the others, in the original's words, by `require`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ferry.errors import UsageError

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

# (field, flag, env) of the parameters without which nothing can run, in the original's order.
REQUIRED = (
    ("tracking_url", "--tracking-url", "TRACKING_URI"),
    ("kiroframe_url", "--kiroframe-url", "KIROFRAME_URL"),
    ("profiling_token", "--profiling-token", "PROFILING_TOKEN"),
)


class KiroframeSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, env_ignore_empty=True)

    import_type: str = Field(default="mlflow", validation_alias="IMPORT_TYPE")
    tracking_url: str | None = Field(default=None, validation_alias="TRACKING_URI")
    kiroframe_url: str | None = Field(default=None, validation_alias="KIROFRAME_URL")
    profiling_token: SecretStr | None = Field(default=None, validation_alias="PROFILING_TOKEN")
    base_dir: Path = Field(default=Path("~/mlflow_export"), validation_alias="EXPORT_BASE_DIR")
    include_schema_profile: bool = Field(default=True, validation_alias="INCLUDE_SCHEMA_PROFILE")
    export_models: bool = Field(default=True, validation_alias="EXPORT_MODELS")
    download_artifacts: bool = Field(default=False, validation_alias="DOWNLOAD_ARTIFACTS")
    experiment_page_size: int = Field(default=200, ge=1, le=1000, validation_alias="EXP_PAGE_SIZE")
    run_page_size: int = Field(default=1000, ge=1, le=50000, validation_alias="RUN_PAGE_SIZE")
    import_to_kiroframe: bool = Field(default=True, validation_alias="IMPORT_TO_KIROFRAME")
    log_level: LogLevel = Field(default="INFO", validation_alias="LOG_LEVEL")

    # Ours. Incremental: export and push only runs that started or ended at or after `since`
    # (from --since, else the state file), plus runs still RUNNING.
    incremental: bool = Field(default=False, validation_alias="INCREMENTAL")
    since: int | None = Field(default=None, validation_alias="SINCE",
                              description="Watermark in ms since the epoch (an ISO 8601 time is accepted).")
    state_file: Path | None = Field(default=None, validation_alias="STATE_FILE",
                                    description="Where the watermark is kept; default <base-dir>/.kiroframe-state.json.")
    workers: int = Field(default=4, ge=1, le=64, validation_alias=AliasChoices("WORKERS", "KIROFRAME_WORKERS"))
    resume: bool = Field(default=True, validation_alias="KIROFRAME_RESUME",
                         description="First finish the push of an earlier export that was interrupted.")

    # How long a record may keep failing with connection errors, timeouts, 429 or 5xx before
    # the push gives up (Kiroframe restarts take minutes), and the backoff between attempts.
    retry_seconds: float = Field(default=900.0, ge=0, validation_alias="KIROFRAME_RETRY_SECONDS")
    backoff_seconds: float = Field(default=2.0, gt=0, validation_alias="KIROFRAME_BACKOFF_SECONDS")
    backoff_max_seconds: float = Field(default=120.0, gt=0, validation_alias="KIROFRAME_BACKOFF_MAX_SECONDS")
    timeout: float = Field(default=60.0, gt=0, validation_alias="KIROFRAME_TIMEOUT")
    # How long a sync waits for another one using the same base directory to finish.
    lock_wait_seconds: float = Field(default=60.0, ge=0, validation_alias="KIROFRAME_LOCK_WAIT_SECONDS")

    @field_validator("since", mode="before")
    @classmethod
    def _since_from_iso(cls, value: object) -> object:
        return parse_since(value) if isinstance(value, str) else value

    @field_validator("import_type")
    @classmethod
    def _only_mlflow(cls, value: str) -> str:
        if value != "mlflow":
            raise ValueError(f"unsupported import type {value!r}: only 'mlflow' is supported")
        return value

    def require(self) -> None:
        """Raise the original's exit-2 message naming every missing required parameter."""
        missing = [f"{flag} or env {env}" for name, flag, env in REQUIRED if not getattr(self, name)]
        if missing:
            raise UsageError("missing required parameter(s): " + ", ".join(missing))

    @property
    def token(self) -> str:
        return self.profiling_token.get_secret_value() if self.profiling_token else ""

    @property
    def export_root(self) -> Path:
        return self.base_dir.expanduser()

    @property
    def state_path(self) -> Path:
        return (self.state_file or self.export_root / ".kiroframe-state.json").expanduser()


def parse_since(value: str) -> int:
    """A watermark given as milliseconds since the epoch or as an ISO 8601 time (naive = UTC)."""
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is neither milliseconds since the epoch nor an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
