"""Where in object storage an export lives: ``s3://bucket/prefix`` plus how to reach the endpoint.

The model is part of the resources' specs (``spec.destination.s3`` / ``spec.source.s3``) and of
the command-line tools (``--output-dir s3://...``, ``--s3-endpoint-url``), so it is a `WireModel`
and imports nothing but pydantic: the operator renders it into CRDs without loading boto3.
Credentials are never part of it; they come from the environment (a Secret's keys in a Job).
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

from pydantic import Field

from ferry.errors import UsageError
from ferry.urls import HTTP_URL, URL_RULE
from ferry.wire import WireModel

# S3's bucket naming rule (3-63 of lowercase letters, digits, dots and hyphens), RE2-compatible.
BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
PREFIX = r"^([^/](.*[^/])?)?$"  # no leading or trailing '/'; `parse` strips them from a URL
ENDPOINT_ENV = ("FERRY_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


class S3Location(WireModel):
    """A prefix in an S3 (or S3-compatible) bucket; credentials come from the environment, not from here."""

    bucket: str = Field(pattern=BUCKET, min_length=3, max_length=63,
                        description="Name of the bucket. It must exist; mlflow-ferry never creates buckets.")
    prefix: str = Field(
        default="", max_length=1024, pattern=PREFIX,
        description="Key prefix inside the bucket that holds the export (no leading or trailing '/'); "
        "empty means the bucket's root. One prefix holds one export.",
    )
    endpoint: str | None = Field(
        default=None, pattern=HTTP_URL, max_length=2048,
        description=f"URL of an S3-compatible endpoint (MinIO, SeaweedFS, Ceph ...): {URL_RULE}. Unset: AWS S3 "
        "(or the endpoint the environment names: FERRY_S3_ENDPOINT_URL, AWS_ENDPOINT_URL_S3).",
    )
    region: str | None = Field(
        default=None, max_length=64,
        description="Region of the bucket. Unset: AWS_DEFAULT_REGION, or boto3's default.",
    )
    insecure_skip_tls_verify: bool = Field(
        default=False,
        description="Do not verify the endpoint's TLS certificate. Prefer a CA bundle (AWS_CA_BUNDLE).",
    )

    @classmethod
    def parse(cls, url: str, *, endpoint: str | None = None, region: str | None = None,
              insecure_skip_tls_verify: bool = False) -> S3Location:
        """``s3://bucket/prefix`` as a location; `UsageError` (one line) for anything else.

        An unset `endpoint` is taken from the environment (`ENDPOINT_ENV`, first set wins), so the
        command-line tools and a Job's Secret name it the same way.
        """
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise UsageError(f"'{url}' is not an S3 location (expected s3://bucket/prefix)")
        if parsed.query or parsed.fragment:
            raise UsageError(f"'{url}': an S3 location takes no '?' or '#' part")
        endpoint = endpoint or next((os.environ[n] for n in ENDPOINT_ENV if os.environ.get(n)), None)
        try:
            return cls(bucket=parsed.netloc, prefix=parsed.path.strip("/"), endpoint=endpoint, region=region,
                       insecure_skip_tls_verify=insecure_skip_tls_verify)
        except ValueError as err:
            field = getattr(err, "errors", lambda: [{}])()[0].get("loc", ("location",))[0]
            raise UsageError(f"'{url}': invalid {field} (bucket names are 3-63 lowercase letters, digits, "
                             "'.' and '-'; an endpoint is an http(s) URL)") from None

    @property
    def url(self) -> str:
        """The ``s3://bucket/prefix`` form (what a user wrote, and what messages name)."""
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def key(self, path: str = "") -> str:
        """The object key of `path` ('/'-separated, relative to the prefix)."""
        path = path.strip("/")
        return f"{self.prefix}/{path}".strip("/") if path else self.prefix

    def child(self, name: str) -> S3Location:
        """The location of `name` under this prefix (one scheduled export of many, for instance)."""
        return self.model_copy(update={"prefix": self.key(name)})

    def __str__(self) -> str:
        return self.url


def is_s3_url(text: str) -> bool:
    """True for ``s3://...`` (what the ``--output-dir`` / ``--input-dir`` flags send to object storage)."""
    return text.startswith("s3://")
