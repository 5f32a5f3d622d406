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

The client (one per distinct configuration, shared by every thread of the process) and the
one-line messages are `ferry.storage`'s, which an export to a bucket uses too. Files above
the multipart threshold move in parts, a few at a time. Every failure is a one-line
`ferry.errors` exception naming the bucket and key, never a botocore traceback.
"""

from __future__ import annotations

import json
import mimetypes
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlparse

from boto3.s3.transfer import TransferConfig

from ferry.errors import UsageError
from ferry.storage.bucket import MIN_CHUNKSIZE
from ferry.storage.client import ClientSettings, flag
from ferry.storage.client import s3_client as storage_client
from ferry.storage.errors import Hints, translated

MULTIPART_THRESHOLD = 64 << 20
MULTIPART_CHUNKSIZE = 16 << 20
MAX_CONCURRENCY = 4  # parts of one file in flight; the engine's workers multiply it

# MLflow's own variable names, in the messages too.
HINTS = Hints(endpoint="check MLFLOW_S3_ENDPOINT_URL",
              tls="set AWS_CA_BUNDLE to the endpoint's CA, or MLFLOW_S3_IGNORE_TLS=true")


class Entry(NamedTuple):
    """One listed artifact, with the fields of `ferry.tracking.artifacts.FileInfo` (which imports us)."""

    path: str  # relative to the artifact root, '/'-separated
    is_dir: bool
    file_size: int | None = None


def s3_client() -> Any:
    """The process's boto3 S3 client for the environment as MLflow's S3 repository reads it."""
    env = os.environ.get
    verify: bool | str | None = False if flag("MLFLOW_S3_IGNORE_TLS") else (env("AWS_CA_BUNDLE") or None)
    return storage_client(ClientSettings(
        endpoint=env("MLFLOW_S3_ENDPOINT_URL") or None, region=env("AWS_DEFAULT_REGION") or None, verify=verify,
        addressing_style=env("MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE") or "auto",
        signature_version=env("MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION") or "s3v4"))


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
                                       multipart_chunksize=max(multipart_chunksize, MIN_CHUNKSIZE),
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
        with translated(action, self.bucket, key, self.client.meta.endpoint_url, HINTS):
            yield
