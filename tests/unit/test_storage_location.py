"""`S3Location`: parsed from ``s3://bucket/prefix`` in one-line errors, its URL, keys and children, its wire form."""

from __future__ import annotations

import pytest

from ferry.errors import UsageError
from ferry.storage import layout
from ferry.storage.location import S3Location


def test_a_url_is_parsed_and_printed_back(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FERRY_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    location = S3Location.parse("s3://ml-backups/mlflow/churn/")
    assert (location.bucket, location.prefix, location.endpoint) == ("ml-backups", "mlflow/churn", None)
    assert location.url == str(location) == "s3://ml-backups/mlflow/churn"
    assert location.key("runs/r1/run.json") == "mlflow/churn/runs/r1/run.json"
    assert location.child("nightly-20260101T000000Z").url == "s3://ml-backups/mlflow/churn/nightly-20260101T000000Z"
    assert S3Location.parse("s3://ml-backups").url == "s3://ml-backups"
    assert S3Location.parse("s3://ml-backups").key("a") == "a"
    assert location.wire() == {"bucket": "ml-backups", "prefix": "mlflow/churn", "insecureSkipTlsVerify": False}


def test_the_endpoint_comes_from_the_flag_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FERRY_S3_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://minio:9000")
    assert S3Location.parse("s3://b-1/p").endpoint == "http://minio:9000"
    monkeypatch.setenv("FERRY_S3_ENDPOINT_URL", "http://seaweed:8333")
    assert S3Location.parse("s3://b-1/p").endpoint == "http://seaweed:8333"
    assert S3Location.parse("s3://b-1/p", endpoint="https://s3.example").endpoint == "https://s3.example"


@pytest.mark.parametrize(("url", "words"), [
    ("gs://bucket/x", "not an S3 location"),
    ("s3:///x", "not an S3 location"),
    ("s3://Bad_Bucket/x", "invalid bucket"),
    ("s3://ab/x", "invalid bucket"),
    ("s3://bucket/x?versionId=1", "no '?' or '#'"),
])
def test_what_is_no_location_is_one_line(url: str, words: str) -> None:
    with pytest.raises(UsageError) as err:
        S3Location.parse(url, endpoint="http://127.0.0.1:1")
    assert words in err.value.message and "\n" not in err.value.message


def test_markers_map_back_to_their_objects() -> None:
    assert layout.marker("/runs/r1/") == ".ferry/objects/runs/r1.done"
    assert layout.object_of(layout.marker("12/runs/r1")) == "12/runs/r1"
    assert layout.object_of(layout.MANIFEST) is None and layout.is_meta(layout.MANIFEST)
    assert not layout.is_meta(".ferryx/a")
