"""The objects under one `S3Location`: list, upload, download, small JSON documents, delete.

Files above the multipart threshold move in parts through boto3's transfer manager, a few parts
at a time; the threshold and part size are settings (``FERRY_S3_MULTIPART_THRESHOLD``,
``FERRY_S3_MULTIPART_CHUNKSIZE``, bytes) because the right values depend on the network, and a
test sets them low to exercise multipart uploads. Every failure is one line (`ferry.storage.errors`).
"""

from __future__ import annotations

import json
import mimetypes
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig

from ferry.errors import NotFoundError, UsageError
from ferry.storage.client import ClientSettings, s3_client
from ferry.storage.errors import translated
from ferry.storage.location import S3Location

MULTIPART_THRESHOLD = 64 << 20
MULTIPART_CHUNKSIZE = 16 << 20
MIN_CHUNKSIZE = 5 << 20  # S3's smallest part but the last
MAX_CONCURRENCY = 4  # parts of one file in flight


def transfer_config(*, threshold: int | None = None, chunksize: int | None = None,
                    max_concurrency: int = MAX_CONCURRENCY) -> TransferConfig:
    """The transfer manager's settings: the arguments, else the environment, else the defaults."""
    threshold = threshold if threshold is not None else _size("FERRY_S3_MULTIPART_THRESHOLD", MULTIPART_THRESHOLD)
    chunksize = chunksize if chunksize is not None else _size("FERRY_S3_MULTIPART_CHUNKSIZE", MULTIPART_CHUNKSIZE)
    return TransferConfig(multipart_threshold=threshold, multipart_chunksize=max(chunksize, MIN_CHUNKSIZE),
                          max_concurrency=max_concurrency, use_threads=max_concurrency > 1)


def _size(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) <= 0:
        raise UsageError(f"{name} must be a positive number of bytes, not {raw!r}")
    return int(raw)


@dataclass(frozen=True)
class Listed:
    """One object under the location: its key relative to the prefix, and its size."""

    path: str
    size: int


class Bucket:
    """The objects under `location`, through the process's shared client for its settings."""

    def __init__(self, location: S3Location, transfer: TransferConfig | None = None) -> None:
        self.location = location
        self.client = s3_client(ClientSettings.of(location))
        self.transfer = transfer or transfer_config()
        self.endpoint = str(self.client.meta.endpoint_url)

    def _errors(self, action: str, key: str) -> Any:
        return translated(action, self.location.bucket, key, self.endpoint)

    def check(self) -> bool:
        """Reach the bucket (one listing of at most one key); True when the prefix holds anything.

        Unknown bucket, refused keys, an unreachable endpoint or a TLS failure is a one-line
        error here, before anything is written or read.
        """
        prefix = self._dir(self.location.prefix)
        with self._errors("list", prefix):
            page = self.client.list_objects_v2(Bucket=self.location.bucket, Prefix=prefix, MaxKeys=1)
        return bool(page.get("KeyCount") or page.get("Contents"))

    def _dir(self, key: str) -> str:
        return f"{key}/" if key else ""

    def walk(self, path: str = "") -> Iterator[Listed]:
        """Every object under `path` (recursively), in key order."""
        base = self._dir(self.location.key(path))
        root = self._dir(self.location.prefix)
        with self._errors("list", base):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.location.bucket,
                                                                              Prefix=base):
                for obj in page.get("Contents", []):
                    key = obj["Key"]
                    if not key.endswith("/"):  # a directory marker is no file
                        yield Listed(key[len(root):], int(obj.get("Size", 0)))

    def children(self, path: str = "") -> list[str]:
        """The names of the 'directories' directly under `path`."""
        base = self._dir(self.location.key(path))
        names: list[str] = []
        with self._errors("list", base):
            for page in self.client.get_paginator("list_objects_v2").paginate(
                    Bucket=self.location.bucket, Prefix=base, Delimiter="/"):
                names += [c["Prefix"][len(base):].rstrip("/") for c in page.get("CommonPrefixes", [])]
        return sorted(n for n in names if n)

    def upload(self, src: Path, path: str) -> int:
        key = self.location.key(path)
        extra: dict[str, Any] = {}
        content_type, encoding = mimetypes.guess_type(src.name)
        if content_type:
            extra["ContentType"] = content_type
        if encoding:
            extra["ContentEncoding"] = encoding
        with self._errors("upload", key):
            self.client.upload_file(str(src), self.location.bucket, key, ExtraArgs=extra or None,
                                    Config=self.transfer)
        return src.stat().st_size

    def download(self, path: str, dest: Path) -> int:
        """Write the object to `dest` through a temporary name, so a present file is a whole one."""
        key = self.location.key(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(f".{dest.name}.part")
        try:
            with self._errors("download", key):
                self.client.download_file(self.location.bucket, key, str(part), Config=self.transfer)
            os.replace(part, dest)
        finally:
            part.unlink(missing_ok=True)
        return dest.stat().st_size

    def put_json(self, path: str, doc: Any) -> None:
        key = self.location.key(path)
        body = (json.dumps(doc, indent=2) + "\n").encode()
        with self._errors("upload", key):
            self.client.put_object(Bucket=self.location.bucket, Key=key, Body=body, ContentType="application/json")

    def get_json(self, path: str) -> Any | None:
        """The JSON document at `path`, or None when there is none."""
        key = self.location.key(path)
        try:
            with self._errors("download", key):
                body = self.client.get_object(Bucket=self.location.bucket, Key=key)["Body"].read()
        except NotFoundError as err:
            if err.message.startswith("S3 bucket"):  # the bucket itself is missing, not the document
                raise
            return None
        try:
            return json.loads(body)
        except ValueError:
            return None

    def delete(self, paths: list[str]) -> None:
        """Delete the objects at `paths` (relative to the prefix), a thousand per request."""
        keys = [self.location.key(p) for p in paths]
        for start in range(0, len(keys), 1000):
            chunk = keys[start:start + 1000]
            with self._errors("delete", chunk[0]):
                self.client.delete_objects(Bucket=self.location.bucket,
                                           Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})
