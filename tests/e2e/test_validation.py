"""Scenario 4: malformed resources are refused by the API server's schema or end FailedValidation
with a clear message, and no Job is made; the operator keeps running through all of them."""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

URI = {"trackingUri": "http://127.0.0.1:1"}
PVC = {"pvc": {"claimName": "backups"}}
EXPORT = {"source": URI, "objects": {"experiments": ["e"]}, "destination": PVC}
KF = {"url": "http://127.0.0.1:1", "tokenSecret": {"name": "kf"}}
SYNC = {"source": URI, "kiroframe": KF, "schedule": "*/5 * * * *"}
IMPORT = {"destination": URI, "source": {"exportRef": {"name": "nowhere"}}}

# Refused by the schema: (kind, spec, words of the API server's message)
REFUSED = [
    ("MlflowExport", {"source": URI, "objects": {}}, "spec.destination: Required value"),
    ("MlflowExport", {**EXPORT, "source": {"trackingUri": 42}}, "spec.source.trackingUri: Invalid value"),
    ("MlflowExport", {**EXPORT, "source": {"trackingUri": "ftp://x"}}, "spec.source.trackingUri"),
    ("MlflowExport", {**EXPORT, "concurrencyPolicy": "Sometimes"}, "spec.concurrencyPolicy: Unsupported value"),
    ("MlflowExport", {**EXPORT, "job": {"backoffLimit": -1}}, "spec.job.backoffLimit"),
    ("MlflowExport", {**EXPORT, "objects": {"modelVersions": [{"model": "m", "version": "one"}]}}, "version"),
    ("KiroframeSync", {**SYNC, "failedJobsHistoryLimit": -2}, "spec.failedJobsHistoryLimit"),
    ("KiroframeSync", {**SYNC, "kiroframe": {"url": "not a url", "tokenSecret": {"name": "kf"}}}, "spec.kiroframe.url"),
    ("KiroframeSync", {k: v for k, v in SYNC.items() if k != "schedule"}, "spec.schedule: Required value"),
    ("MlflowImport", {**IMPORT, "source": {"exportRef": {"name": "a"}, "pvc": {"claimName": "c"}}}, "spec.source"),
    # A URL is scheme, host, port and a plain path: no user-info, query or fragment.
    ("MlflowExport", {**EXPORT, "source": {"trackingUri": "http://bob:pw@h:1"}}, "spec.source.trackingUri"),
    ("MlflowExport", {**EXPORT, "source": {"trackingUri": "http://169.254.169.254/latest/meta-data/iam/x#"}},
     "spec.source.trackingUri"),
    ("KiroframeSync", {**SYNC, "kiroframe": {**KF, "url": "https://kf.example/x?to=http://evil"}}, "spec.kiroframe.url"),
]
# Accepted by the schema, refused by the operator: (kind, spec, words in validationErrors)
INVALID = [
    ("KiroframeSync", {**SYNC, "schedule": "61 * * * *"}, "spec.schedule: '61 * * * *' is not a valid cron"),
    ("KiroframeSync", {**SYNC, "timeZone": "Mars/Olympus"}, "spec.timeZone: 'Mars/Olympus' is not an IANA"),
    ("MlflowExport", {**EXPORT, "options": {"stages": ["Production"], "versions": ["1"]}}, "stages and versions"),
    ("MlflowExport", {**EXPORT, "objects": {}}, "names nothing to export"),
    ("MlflowExport", {**EXPORT, "destination": {"pvc": {"claimName": "b", "subPath": "../x"}}}, "'..' is not allowed"),
    ("MlflowExport", {**EXPORT, "job": {"resources": {"limits": {"memory": "lots"}}}}, "is not a quantity"),
    ("MlflowImport", IMPORT, "MlflowExport 'nowhere' does not exist"),
    # The default policy (docs/security.md): no env outside the tuning knobs, no internal address, no
    # unlabelled Secret as credentials.
    ("MlflowExport", {**EXPORT, "job": {"env": [{"name": "PYTHONPATH", "value": "/data/evil"}]}},
     "policy.env.allowedNames: spec.job.env[0] sets 'PYTHONPATH'"),
    ("MlflowExport", {**EXPORT, "source": {"trackingUri": "http://169.254.169.254/latest"}},
     "policy.allowedInternalHosts: spec.source.trackingUri names '169.254.169.254', a link-local address"),
    ("KiroframeSync", {**SYNC, "schedule": "* * * * * */5", "kiroframe": {**KF, "tokenSecret": {"name": "db"}}},
     "policy.credentialsSecretLabel: spec.kiroframe.tokenSecret.name names Secret 'db', which does not carry"),
]


def test_malformed_resources(operator, res) -> None:
    res.secret("db", {"password": "db-S3CR3T"}, labels={})  # a Secret of the namespace, not meant for us
    for i, (kind, spec, words) in enumerate(REFUSED):
        with pytest.raises(ApiException) as refused:
            res.create(kind, f"refused-{i}", spec)
        assert refused.value.status == 422 and words in refused.value.body, (kind, spec, refused.value.body)
    for i, (kind, spec, _) in enumerate(INVALID):
        res.create(kind, f"invalid-{i}", spec)
    for i, (kind, _, words) in enumerate(INVALID):
        status = res.wait_phase(kind, f"invalid-{i}", {"FailedValidation"}, timeout=60)
        assert any(words in e for e in status["validationErrors"]), status
        assert status["message"].startswith("1 problem(s) in the spec")
        condition = {c["type"]: c for c in status["conditions"]}["Validated"]
        assert (condition["status"], condition["reason"]) == ("False", "InvalidSpec")
        res.wait_event(f"invalid-{i}", "FailedValidation", "Warning")
    assert res.jobs() == []
    assert not any("db-S3CR3T" in f"{e.message}" for e in res.core.list_namespaced_event(res.namespace).items)
    # fixing the spec lets it start: FailedValidation is not a dead end
    res.patch("KiroframeSync", "invalid-0", {"spec": {"schedule": "0 0 1 1 *", "suspend": True}})
    status = res.wait_phase("KiroframeSync", "invalid-0", {"Pending"}, timeout=30)
    assert status.get("validationErrors") is None and status["nextScheduleTime"].endswith("-01-01T00:00:00Z")
    assert operator.running
