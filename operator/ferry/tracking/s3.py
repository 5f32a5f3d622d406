"""Artifacts under an ``s3://bucket/key-prefix`` root, listed, downloaded and uploaded with boto3.

A tracking server started with ``--no-serve-artifacts`` and an S3 default artifact root leaves
the artifacts to its clients: a run's ``artifact_uri`` is ``s3://...`` and whoever reads or
writes it talks to S3 itself. The environment is read the way MLflow's S3 repository reads it
(``mlflow/store/artifact/s3_artifact_repo.py``), so the variables a user exports for the MLflow
client work here unchanged:

* ``MLFLOW_S3_ENDPOINT_URL`` — an S3-compatible endpoint (MinIO, SeaweedFS, Ceph ...);
* ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, ``AWS_DEFAULT_REGION``
  (or anything else boto3's credential chain finds: a profile, a web identity, an instance role);
* ``AWS_CA_BUNDLE`` — the CA to trust; ``MLFLOW_S3_IGNORE_TLS=true`` — no TLS verification;
* ``MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE``, ``MLFLOW_S3_UPLOAD_EXTRA_ARGS`` (JSON),
  ``MLFLOW_S3_EXPECTED_BUCKET_OWNER``.

One boto3 client per distinct configuration is shared by every thread of the process (clients
are thread-safe, sessions are not, so a session lives only while its client is made). Files above
the multipart threshold move in parts, a few at a time. Every failure is a one-line
`ferry.errors` exception naming the bucket and key, never a botocore traceback.
"""

from __future__ import annotations

import json
import mimetypes
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlparse

import boto3
from boto3.exceptions import RetriesExceededError, S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
    SSLError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from ferry.errors import FerryError, NotFoundError, ServerError, UsageError

MULTIPART_THRESHOLD = 64 << 20
MULTIPART_CHUNKSIZE = 16 << 20
MAX_CONCURRENCY = 4  # parts of one file in flight; the engine's workers multiply it
POOL_CONNECTIONS = 32

_ENV = ("MLFLOW_S3_ENDPOINT_URL", "MLFLOW_S3_IGNORE_TLS", "AWS_CA_BUNDLE", "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_PROFILE",
        "MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE", "MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION",
        "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE")
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_DENIED = {"AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch",
           "InvalidToken", "ExpiredToken", "AllAccessDisabled"}



class Entry(NamedTuple):
    """One listed artifact, with the fields of `ferry.tracking.artifacts.FileInfo` (which imports us)."""

    path: str  # relative to the artifact root, '/'-separated
    is_dir: bool
    file_size: int | None = None


_clients: dict[tuple[str | None, ...], Any] = {}
_clients_lock = threading.Lock()


def _flag(name: str) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "false", "0"):
        return False
    if value in ("true", "1"):
        return True
    raise UsageError(f"{name} must be true or false, not {value!r}")


def s3_client() -> Any:
    """The process's boto3 S3 client for the current environment (made once per configuration)."""
    key = tuple(os.environ.get(name) or None for name in _ENV)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = _make_client()
        return client


def _make_client() -> Any:
    env = os.environ.get
    verify: bool | str | None = False if _flag("MLFLOW_S3_IGNORE_TLS") else (env("AWS_CA_BUNDLE") or None)
    signature = env("MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION") or "s3v4"
    if signature.lower() == "unsigned":
        from botocore import UNSIGNED

        signature = UNSIGNED  # type: ignore[assignment]
    config = Config(
        signature_version=signature,
        s3={"addressing_style": env("MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE") or "auto"},
        # A closed or wrong endpoint fails within seconds, not after botocore's minutes of retries.
        retries={"mode": env("AWS_RETRY_MODE") or "standard", "max_attempts": int(env("AWS_MAX_ATTEMPTS") or 3)},
        connect_timeout=10, read_timeout=120, max_pool_connections=POOL_CONNECTIONS,
    )
    session = boto3.session.Session(  # credentials and region as the MLflow client finds them
        aws_access_key_id=env("AWS_ACCESS_KEY_ID") or None,
        aws_secret_access_key=env("AWS_SECRET_ACCESS_KEY") or None,
        aws_session_token=env("AWS_SESSION_TOKEN") or None,
        region_name=env("AWS_DEFAULT_REGION") or None,
    )
    return session.client("s3", endpoint_url=env("MLFLOW_S3_ENDPOINT_URL") or None, verify=verify, config=config)


class S3Artifacts:
    """The artifacts under one ``s3://bucket/prefix`` root: `ferry.tracking.artifacts`' S3 backend."""

    def __init__(self, uri: str, *, multipart_threshold: int = MULTIPART_THRESHOLD,
                 multipart_chunksize: int = MULTIPART_CHUNKSIZE, max_concurrency: int = MAX_CONCURRENCY) -> None:
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise UsageError(f"not an S3 artifact root: {uri!r} (expected s3://bucket/prefix)")
        self.uri = uri
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.client = s3_client()
        self.transfer = TransferConfig(multipart_threshold=multipart_threshold,
                                       multipart_chunksize=max(multipart_chunksize, 5 << 20),
                                       max_concurrency=max_concurrency, use_threads=max_concurrency > 1)
        owner = os.environ.get("MLFLOW_S3_EXPECTED_BUCKET_OWNER")
        self._owner = {"ExpectedBucketOwner": owner} if owner else {}

    def key(self, path: str) -> str:
        path = path.strip("/")
        return f"{self.prefix}/{path}".strip("/") if path else self.prefix

    def list(self, path: str) -> list[Entry]:
        """What is directly under `path` (a file has no children: its listing is empty)."""
        base = self.key(path)
        prefix = f"{base}/" if base else ""
        rel = f"{path}/" if path else ""
        infos: list[Entry] = []
        with self._errors("list", prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, Delimiter="/", **self._owner)
            for page in pages:
                for common in page.get("CommonPrefixes", []):
                    name = common["Prefix"][len(prefix):].rstrip("/")
                    if name:
                        infos.append(Entry(rel + name, True))
                for obj in page.get("Contents", []):
                    name = obj["Key"][len(prefix):]
                    if name and not name.endswith("/"):  # a directory marker is no file
                        infos.append(Entry(rel + name, False, int(obj.get("Size", 0))))
        return sorted(infos, key=lambda f: f.path)

    def download(self, path: str, dest: Path) -> int:
        """Write the object to `dest`; the caller gives a temporary name and renames it when done."""
        key = self.key(path)
        with self._errors("download", key):
            self.client.download_file(self.bucket, key, str(dest), ExtraArgs=self._owner or None,
                                      Config=self.transfer)
        return dest.stat().st_size

    def upload(self, src: Path, path: str) -> int:
        key = self.key(path)
        extra: dict[str, Any] = dict(self._owner)
        content_type, encoding = mimetypes.guess_type(src.name)
        if content_type:
            extra["ContentType"] = content_type
        if encoding:
            extra["ContentEncoding"] = encoding
        if raw := os.environ.get("MLFLOW_S3_UPLOAD_EXTRA_ARGS"):
            try:
                extra.update(json.loads(raw))
            except (ValueError, TypeError) as err:
                raise UsageError(f"MLFLOW_S3_UPLOAD_EXTRA_ARGS is not a JSON object: {err}") from None
        with self._errors("upload", key):
            self.client.upload_file(str(src), self.bucket, key, ExtraArgs=extra or None, Config=self.transfer)
        return src.stat().st_size

    @contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        try:
            yield
        except FerryError:
            raise
        except (ClientError, BotoCoreError, S3UploadFailedError, RetriesExceededError) as err:
            raise _translate(err, action, self.bucket, key, self.client.meta.endpoint_url) from None


def _translate(err: BaseException, action: str, bucket: str, key: str, endpoint: str) -> FerryError:
    """One line for a boto3/botocore failure, naming the object and what to check."""
    if isinstance(err, S3UploadFailedError | RetriesExceededError):  # wrappers of the real cause
        inner = getattr(err, "last_exception", None) or err.__cause__ or err.__context__
        if isinstance(inner, ClientError | BotoCoreError):
            err = inner
    where = f"s3://{bucket}/{key}"
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        code = str(error.get("Code") or err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        detail = " ".join(str(error.get("Message") or code).split())
        if code == "NoSuchBucket":
            return NotFoundError(f"S3 bucket '{bucket}' does not exist at {endpoint} ({action} {where})")
        if code in _NOT_FOUND:
            return NotFoundError(f"S3 object {where} not found at {endpoint}")
        if code in _DENIED:
            return ServerError(f"S3 access denied to {where} at {endpoint} ({code}: {detail}); "
                               "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket's policy")
        return ServerError(f"S3 {action} of {where} at {endpoint} failed: {code}: {detail}")
    detail = " ".join(str(err).split())
    if isinstance(err, SSLError):
        return ServerError(f"TLS failure talking to S3 at {endpoint} ({action} {where}): {detail}; "
                           "set AWS_CA_BUNDLE to the endpoint's CA, or MLFLOW_S3_IGNORE_TLS=true")
    if isinstance(err, NoCredentialsError | PartialCredentialsError):
        return ServerError(f"no usable AWS credentials for {where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    if isinstance(err, BotoConnectionError):
        return ServerError(f"cannot reach S3 at {endpoint} ({action} {where}): {detail}; "
                           "check MLFLOW_S3_ENDPOINT_URL")
    return ServerError(f"S3 {action} of {where} at {endpoint} failed: {detail}")
