"""One boto3 S3 client per distinct configuration, shared by every thread of the process.

Two kinds of callers reach S3: `ferry.tracking.s3` (a run's ``s3://`` artifact root, configured the
way MLflow's own S3 repository reads the environment: ``MLFLOW_S3_ENDPOINT_URL``,
``MLFLOW_S3_IGNORE_TLS`` ...) and this package (an export's `S3Location`, whose endpoint, region
and TLS setting come from the location). Both build their client here, so retries, timeouts,
the connection pool and the credential chain are the same. Credentials are never passed in:
boto3's chain finds them (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` /
``AWS_SESSION_TOKEN``, a profile, a web identity, an instance role), so no secret is ever part of
an object of ours that could be printed. Clients are thread-safe, sessions are not: a session
lives only while its client is made.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from ferry.errors import UsageError
from ferry.storage.location import S3Location

POOL_CONNECTIONS = 32
_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_CA_BUNDLE",
        "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE")


@dataclass(frozen=True)
class ClientSettings:
    """What tells two clients apart (besides the credential environment, also part of the cache key)."""

    endpoint: str | None = None
    region: str | None = None
    verify: bool | str | None = None  # False: no TLS verification; a path: the CA bundle; None: boto3's default
    addressing_style: str = "auto"
    signature_version: str = "s3v4"

    @classmethod
    def of(cls, location: S3Location) -> ClientSettings:
        """The settings of an export location: its own fields, then the environment."""
        env = os.environ.get
        verify: bool | str | None = False if location.insecure_skip_tls_verify else (env("AWS_CA_BUNDLE") or None)
        # A non-AWS endpoint rarely has a DNS name per bucket: path-style addressing works everywhere.
        style = env("FERRY_S3_ADDRESSING_STYLE") or ("path" if location.endpoint else "auto")
        return cls(endpoint=location.endpoint, region=location.region or env("AWS_DEFAULT_REGION") or None,
                   verify=verify, addressing_style=style)


_clients: dict[tuple[Any, ...], Any] = {}
_lock = threading.Lock()


def flag(name: str) -> bool:
    """A true/false environment variable; anything else is a one-line `UsageError`."""
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "false", "0"):
        return False
    if value in ("true", "1"):
        return True
    raise UsageError(f"{name} must be true or false, not {value!r}")


def s3_client(settings: ClientSettings) -> Any:
    """The process's client for `settings` and the current credential environment (made once)."""
    key = (settings, *(os.environ.get(name) or None for name in _ENV))
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = _make(settings)
        return client


def _make(settings: ClientSettings) -> Any:
    env = os.environ.get
    signature: Any = settings.signature_version
    if signature.lower() == "unsigned":
        from botocore import UNSIGNED

        signature = UNSIGNED
    config = Config(
        signature_version=signature,
        s3={"addressing_style": settings.addressing_style},
        # A closed or wrong endpoint fails within seconds, not after botocore's minutes of retries.
        retries={"mode": env("AWS_RETRY_MODE") or "standard", "max_attempts": int(env("AWS_MAX_ATTEMPTS") or 3)},
        connect_timeout=10, read_timeout=120, max_pool_connections=POOL_CONNECTIONS,
    )
    session = boto3.session.Session(
        aws_access_key_id=env("AWS_ACCESS_KEY_ID") or None,
        aws_secret_access_key=env("AWS_SECRET_ACCESS_KEY") or None,
        aws_session_token=env("AWS_SESSION_TOKEN") or None,
        region_name=settings.region,
    )
    return session.client("s3", endpoint_url=settings.endpoint, verify=settings.verify, config=config)
