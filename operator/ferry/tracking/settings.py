"""How to reach an MLflow server, read from the same environment variables MLflow's own client reads.

Users who script mlflow-export-import already export these; reading them the same way means a
Job's credentials Secret works for both tools unchanged.
"""

from __future__ import annotations

import os
from typing import Literal, Self

from pydantic import AliasChoices, Field, PrivateAttr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from ferry.errors import UsageError


class TrackingSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    token: str | None = Field(default=None, validation_alias="MLFLOW_TRACKING_TOKEN")
    username: str | None = Field(default=None, validation_alias="MLFLOW_TRACKING_USERNAME")
    password: str | None = Field(default=None, validation_alias="MLFLOW_TRACKING_PASSWORD")
    insecure_tls: bool = Field(default=False, validation_alias="MLFLOW_TRACKING_INSECURE_TLS")
    server_cert_path: str | None = Field(default=None, validation_alias="MLFLOW_TRACKING_SERVER_CERT_PATH")
    client_cert_path: str | None = Field(default=None, validation_alias="MLFLOW_TRACKING_CLIENT_CERT_PATH")

    # Our own knobs. A closed port fails fast after a few attempts; a busy server (429/5xx) gets
    # backed-off retries, but never for longer than `retry_seconds` in total per request.
    timeout: float = Field(default=120.0, validation_alias=AliasChoices("FERRY_HTTP_TIMEOUT", "MLFLOW_HTTP_REQUEST_TIMEOUT"))
    max_attempts: int = Field(default=5, ge=1, validation_alias="FERRY_HTTP_MAX_ATTEMPTS")
    retry_seconds: float = Field(default=60.0, ge=0, validation_alias="FERRY_HTTP_RETRY_SECONDS")
    pool_size: int = Field(default=16, ge=1, validation_alias="FERRY_HTTP_POOL_SIZE")
    # How metric histories are read. `auto`: the open-source server's bulk endpoint (100 runs a
    # request) where it is served, detected once per server; `per-metric`: always the paged
    # per-metric endpoint that every server, Databricks included, serves. The per-metric reads
    # run `history_workers` at a time.
    metric_history: Literal["auto", "per-metric"] = Field(default="auto", validation_alias="FERRY_METRIC_HISTORY")
    history_workers: int = Field(default=8, ge=1, le=64, validation_alias="FERRY_HISTORY_WORKERS")
    # The prefix the credentials were read with; a Databricks workspace's sign-in variables are
    # read with the same one (``SRC_DATABRICKS_HOST`` ...).
    _prefix: str = PrivateAttr(default="")

    @property
    def prefix(self) -> str:
        return self._prefix

    @classmethod
    def from_env(cls, prefix: str = "") -> Self:
        """The settings of one of two servers: ``{prefix}MLFLOW_TRACKING_*`` first, the plain variable else.

        A mirror talks to two servers, each with its own credentials (the Job gets each server's
        Secret with its own prefix, ``SRC_`` and ``DST_``); our knobs (``FERRY_HTTP_*``) are shared.
        """
        try:
            return cls._read(prefix)
        except ValidationError as err:  # a mistyped knob is the user's: one line, not a traceback
            first = err.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "the environment"
            raise UsageError(f"{where}: {first['msg']} (got '{first.get('input')}')") from None

    @classmethod
    def _read(cls, prefix: str) -> Self:
        if not prefix:
            return cls()
        credentials = ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                       "MLFLOW_TRACKING_INSECURE_TLS", "MLFLOW_TRACKING_SERVER_CERT_PATH",
                       "MLFLOW_TRACKING_CLIENT_CERT_PATH")
        prefixed = {name: os.environ[prefix + name] for name in credentials if prefix + name in os.environ}
        settings = cls(**prefixed) if prefixed else cls()
        settings._prefix = prefix
        return settings
