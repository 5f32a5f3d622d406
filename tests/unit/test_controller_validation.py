"""What the schema cannot say: each malformed spec gets one clear line naming the field."""

from __future__ import annotations

import copy

import pytest

from ferry.api.resources import KIROFRAME_SYNC, MLFLOW_EXPORT, MLFLOW_IMPORT, MLFLOW_MIRROR
from ferry.controller.validation import validate

EXPORT = {
    "source": {"trackingUri": "http://mlflow:5000"},
    "objects": {"experiments": ["e"]},
    "destination": {"pvc": {"claimName": "backups"}},
}
IMPORT = {"destination": {"trackingUri": "http://mlflow:5000"}, "source": {"exportRef": {"name": "nightly"}}}
SYNC = {
    "source": {"trackingUri": "http://mlflow:5000"},
    "kiroframe": {"url": "https://kf.example", "tokenSecret": {"name": "kf"}},
    "schedule": "*/5 * * * *",
}
MIRROR = {
    "source": {"trackingUri": "http://mlflow:5000"},
    "destination": {"trackingUri": "http://mlflow-standby:5000"},
    "schedule": "*/5 * * * *",
}
BASE = {MLFLOW_EXPORT: EXPORT, MLFLOW_IMPORT: IMPORT, KIROFRAME_SYNC: SYNC, MLFLOW_MIRROR: MIRROR}


def changed(kind, path: str, value):
    spec = copy.deepcopy(BASE[kind])
    *parents, last = path.split(".")
    node = spec
    for part in parents:
        node = node.setdefault(part, {})
    if value is None:
        node.pop(last, None)
    else:
        node[last] = value
    return kind, spec


CASES = {
    "bad cron": (changed(KIROFRAME_SYNC, "schedule", "61 * * * *"), "spec.schedule: '61 * * * *' is not a valid cron"),
    "too few cron fields": (changed(KIROFRAME_SYNC, "schedule", "* *"), "spec.schedule: '* *' has 2 fields"),
    "unknown time zone": (changed(KIROFRAME_SYNC, "timeZone", "Mars/Base"), "spec.timeZone: 'Mars/Base' is not an IANA"),
    "stages and versions": (
        changed(MLFLOW_EXPORT, "options", {"stages": ["Production"], "versions": ["3"]}),
        "spec.options: stages and versions exclude each other",
    ),
    "nothing to export": (changed(MLFLOW_EXPORT, "objects", {}), "spec.objects: names nothing to export"),
    "password in uri": (
        changed(MLFLOW_EXPORT, "source.trackingUri", "http://bob:hunter2@mlflow:5000"),
        "spec.source.trackingUri: credentials must not be part of the URL",
    ),
    "uri without host": (changed(MLFLOW_IMPORT, "destination.trackingUri", "http://"), "spec.destination.trackingUri"),
    "bad port": (changed(MLFLOW_EXPORT, "source.trackingUri", "http://mlflow:99999"), "is not a URL"),
    "kiroframe url without host": (changed(KIROFRAME_SYNC, "kiroframe.url", "https://:443"), "spec.kiroframe.url"),
    "databricks without credentials": (
        changed(MLFLOW_EXPORT, "source.trackingUri", "databricks"),
        "spec.source.credentialsSecret: required for a Databricks workspace",
    ),
    "databricks profile without credentials": (
        changed(MLFLOW_MIRROR, "destination.trackingUri", "databricks://standby"),
        "spec.destination.credentialsSecret: required for a Databricks workspace",
    ),
    "databricks secret scope": (
        changed(MLFLOW_IMPORT, "destination", {"trackingUri": "databricks://scope:prefix",
                                               "credentialsSecret": {"name": "dbx"}}),
        "spec.destination.trackingUri: 'databricks://scope:prefix' is not databricks or databricks://<profile>",
    ),
    "permissions from an open-source server": (
        changed(MLFLOW_EXPORT, "options", {"exportPermissions": True}),
        "spec.options: notebookFormats and exportPermissions apply only to a Databricks workspace",
    ),
    "notebooks into an open-source server": (
        changed(MLFLOW_IMPORT, "options", {"dstNotebookDir": "/Shared/runs"}),
        "spec.options: importPermissions and dstNotebookDir apply only to a Databricks workspace",
    ),
    "unity catalog": (
        changed(MLFLOW_EXPORT, "source.trackingUri", "databricks-uc"),
        "spec.source.trackingUri: 'databricks-uc' is not http(s)://host[:port][/path]",
    ),
    "fragment in uri": (
        changed(MLFLOW_EXPORT, "source.trackingUri", "http://169.254.169.254/latest/meta-data/iam/role#"),
        "spec.source.trackingUri: a query or fragment is not allowed; the URL is http(s)://host[:port][/path]",
    ),
    "query in kiroframe url": (
        changed(KIROFRAME_SYNC, "kiroframe.url", "https://kf.example/x?next=http://evil"),
        "spec.kiroframe.url: a query or fragment is not allowed",
    ),
    "path escapes the claim": (
        changed(MLFLOW_EXPORT, "destination.pvc.subPath", "a/../../etc"),
        "spec.destination.pvc.subPath: '..' is not allowed",
    ),
    "keep without schedule": (changed(MLFLOW_EXPORT, "keep", 3), "spec.keep: only a scheduled export"),
    "time zone without schedule": (changed(MLFLOW_EXPORT, "timeZone", "UTC"), "spec.timeZone: only meaningful"),
    "bad run start time": (
        changed(MLFLOW_EXPORT, "options", {"runStartTime": "last tuesday"}),
        "spec.options.runStartTime: 'last tuesday' is not an ISO 8601",
    ),
    "both import sources": (
        changed(MLFLOW_IMPORT, "source.pvc", {"claimName": "c"}),
        "spec.source: set exactly one of exportRef, pvc and s3",
    ),
    "import sources exportRef and s3": (
        changed(MLFLOW_IMPORT, "source.s3", {"bucket": "backups"}),
        "spec.source: set exactly one of exportRef, pvc and s3",
    ),
    "both export destinations": (
        changed(MLFLOW_EXPORT, "destination.s3", {"bucket": "backups"}),
        "spec.destination: set exactly one of pvc and s3",
    ),
    "no export destination": (
        changed(MLFLOW_EXPORT, "destination.pvc", None),
        "spec.destination: set exactly one of pvc and s3",
    ),
    "bad bucket name": (
        changed(MLFLOW_IMPORT, "source", {"s3": {"bucket": "Backups_2024"}}),
        "spec.source.s3.bucket: String should match pattern",
    ),
    "prefix escapes": (
        changed(MLFLOW_EXPORT, "destination", {"s3": {"bucket": "backups", "prefix": "a/../b"}}),
        "spec.destination.s3.prefix: '..' is not allowed",
    ),
    "keys in the endpoint": (
        changed(MLFLOW_EXPORT, "destination", {"s3": {"bucket": "backups", "endpoint": "https://ak:sk@s3.example"}}),
        "spec.destination.s3.endpoint: credentials must not be part of the URL",
    ),
    "misspelt tls flag": (
        changed(MLFLOW_EXPORT, "destination", {"s3": {"bucket": "backups", "insecureSkipTlsVerify": True}}),
        "spec.destination.s3.insecureSkipTlsVerify: Extra inputs are not permitted",
    ),
    "bucket keys also in job env": (
        (MLFLOW_EXPORT, {**EXPORT, "destination": {"s3": {"bucket": "backups", "credentialsSecret": {"name": "s3"}}},
                         "job": {"env": [{"name": "AWS_ACCESS_KEY_ID", "value": "x"}]}}),
        "spec.job.env: AWS_ACCESS_KEY_ID comes from spec.destination.s3.credentialsSecret",
    ),
    "no import source": (changed(MLFLOW_IMPORT, "source.exportRef", None), "spec.source: set exactly one"),
    "empty rename": (
        changed(MLFLOW_IMPORT, "target", {"renames": {"models": {"a": " "}}}),
        "spec.target.renames.models: 'a' -> ' ' has an empty name",
    ),
    "bad quantity": (
        changed(MLFLOW_EXPORT, "job", {"resources": {"limits": {"memory": "lots"}}}),
        "spec.job.resources.limits.memory: 'lots' is not a quantity",
    ),
    "reserved env": (
        changed(MLFLOW_EXPORT, "job", {"env": [{"name": "FERRY_JOB", "value": "x"}]}),
        "spec.job.env: FERRY_JOB is set by the operator",
    ),
    "missing field": (changed(MLFLOW_EXPORT, "destination", None), "spec.destination: Field required"),
    "wrong type": (changed(KIROFRAME_SYNC, "suspend", "sometimes"), "spec.suspend: Input should be a valid boolean"),
    "negative limit": (
        changed(KIROFRAME_SYNC, "successfulJobsHistoryLimit", -1),
        "spec.successfulJobsHistoryLimit: Input should be greater than or equal to 0",
    ),
    "unknown field": (changed(MLFLOW_IMPORT, "destinaton", {}), "spec.destinaton: Extra inputs are not permitted"),
    "mirror onto its source": (
        changed(MLFLOW_MIRROR, "destination.trackingUri", "http://MLflow:5000/"),
        "spec.destination.trackingUri: 'http://MLflow:5000/' is the source; a mirror copies to another server",
    ),
    "mirror onto its source by the default port": (
        (MLFLOW_MIRROR, {**MIRROR, "source": {"trackingUri": "https://mlflow.example/api"},
                         "destination": {"trackingUri": "https://mlflow.example:443/api/"}}),
        "spec.destination.trackingUri: 'https://mlflow.example:443/api/' is the source",
    ),
    "mirror without a schedule": (changed(MLFLOW_MIRROR, "schedule", None), "spec.schedule: Field required"),
    "mirror with a bad schedule": (changed(MLFLOW_MIRROR, "schedule", "*/5 * *"), "spec.schedule: '*/5 * *' has 3"),
    "mirror destination with a password": (
        changed(MLFLOW_MIRROR, "destination.trackingUri", "http://bob:hunter2@standby:5000"),
        "spec.destination.trackingUri: credentials must not be part of the URL",
    ),
    "mirror empty rename": (
        changed(MLFLOW_MIRROR, "renames", {"experiments": {"prod/": ""}}),
        "spec.renames.experiments: 'prod/' -> '' has an empty name",
    ),
    "mirror bad full compare period": (
        changed(MLFLOW_MIRROR, "options", {"fullCompareEvery": "daily"}),
        "spec.options.fullCompareEvery: String should match pattern",
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_malformed_spec_is_named(case: str) -> None:
    (kind, spec), expected = CASES[case]
    _, errors = validate(kind, spec)
    assert errors, f"{case}: accepted"
    assert any(expected in e for e in errors), errors
    assert all(e.startswith("spec") for e in errors)


def test_problems_are_collected_together() -> None:
    spec = copy.deepcopy(EXPORT)
    spec.update(objects={}, keep=2, options={"stages": ["Staging"], "versions": ["1"]})
    _, errors = validate(MLFLOW_EXPORT, spec)
    assert len(errors) == 3


@pytest.mark.parametrize("kind", list(BASE), ids=lambda k: k.kind)
def test_good_specs_pass(kind) -> None:
    model, errors = validate(kind, BASE[kind])
    assert errors == [] and model is not None


S3 = {"bucket": "ml-backups", "prefix": "nightly/eu", "endpoint": "https://minio.storage:9000", "region": "eu-west-1",
      "credentialsSecret": {"name": "backup-s3"}, "insecureSkipTLSVerify": True}


@pytest.mark.parametrize(("kind", "path"), [(MLFLOW_EXPORT, "destination"), (MLFLOW_IMPORT, "source")],
                         ids=["export destination", "import source"])
def test_s3_places_pass_with_every_field(kind, path) -> None:
    model, errors = validate(kind, {**BASE[kind], path: {"s3": S3}})
    assert errors == [] and model is not None
    s3 = getattr(model, path).s3
    assert (s3.bucket, s3.prefix, s3.endpoint, s3.region) == ("ml-backups", "nightly/eu", "https://minio.storage:9000",
                                                              "eu-west-1")
    assert s3.insecure_skip_tls_verify is True and s3.credentials_secret.name == "backup-s3"
    assert s3.wire() == S3  # the names on the wire are the ones documented


def test_keep_is_allowed_for_a_scheduled_s3_export() -> None:
    spec = {**EXPORT, "destination": {"s3": {"bucket": "ml-backups"}}, "schedule": "0 3 * * *", "keep": 7}
    model, errors = validate(MLFLOW_EXPORT, spec)
    assert errors == [] and model is not None and model.keep == 7


def test_messages_never_echo_a_password() -> None:
    kind, spec = changed(MLFLOW_EXPORT, "source.trackingUri", "http://bob:hunter2@:99999")
    _, errors = validate(kind, spec)
    assert errors and not any("hunter2" in e for e in errors)


def test_a_mirror_between_two_paths_of_one_host_is_two_servers() -> None:
    spec = {**MIRROR, "source": {"trackingUri": "https://ml.example/eu"},
            "destination": {"trackingUri": "https://ml.example/us"}}
    model, errors = validate(MLFLOW_MIRROR, spec)
    assert errors == [] and model is not None


@pytest.mark.parametrize("uri", ["databricks", "databricks://prod-workspace"])
def test_a_databricks_workspace_with_a_credentials_secret_passes(uri: str) -> None:
    kind, spec = changed(MLFLOW_EXPORT, "source", {"trackingUri": uri, "credentialsSecret": {"name": "dbx"}})
    spec["options"] = {"exportPermissions": True, "notebookFormats": ["SOURCE", "JUPYTER"]}
    assert validate(kind, spec)[1] == []
