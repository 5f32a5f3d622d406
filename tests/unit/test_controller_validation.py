"""What the schema cannot say: each malformed spec gets one clear line naming the field."""

from __future__ import annotations

import copy

import pytest

from ferry.api.resources import KIROFRAME_SYNC, MLFLOW_EXPORT, MLFLOW_IMPORT
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
BASE = {MLFLOW_EXPORT: EXPORT, MLFLOW_IMPORT: IMPORT, KIROFRAME_SYNC: SYNC}


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
        "spec.source: set exactly one of exportRef and pvc",
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


def test_messages_never_echo_a_password() -> None:
    kind, spec = changed(MLFLOW_EXPORT, "source.trackingUri", "http://bob:hunter2@:99999")
    _, errors = validate(kind, spec)
    assert errors and not any("hunter2" in e for e in errors)
