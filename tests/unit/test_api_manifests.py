"""The RBAC manifests grant exactly what the operator and its Jobs use; the examples are valid specs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ferry.api import BY_KIND
from ferry.controller.validation import validate

ROOT = Path(__file__).resolve().parents[2]


def rules(path: str) -> list[dict]:
    docs = list(yaml.safe_load_all((ROOT / path).read_text()))
    return next(d for d in docs if d["kind"] in ("Role", "ClusterRole"))["rules"]


def test_operator_role_is_least_privilege() -> None:
    cluster = rules("deploy/rbac/operator-clusterrole.yaml")
    assert cluster == rules("deploy/rbac/operator-role.yaml")
    for rule in cluster:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
        assert "escalate" not in rule["verbs"]
        if "secrets" in rule["resources"]:  # a credentials Secret's labels (policy.credentialsSecretLabel)
            assert rule == {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}
    granted = {(g, r, v) for rule in cluster for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    assert ("batch", "jobs", "create") in granted and ("", "pods", "list") in granted
    assert ("", "pods", "get") not in granted and ("", "events", "create") in granted


def test_job_role_only_patches_status() -> None:
    assert rules("deploy/rbac/job-role.yaml") == [
        {
            "apiGroups": ["ferry.dev"],
            "resources": ["mlflowexports/status", "mlflowimports/status", "kiroframesyncs/status",
                          "mlflowmirrors/status"],
            "verbs": ["patch"],
        }
    ]


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_examples_are_valid(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        kind = BY_KIND.get(doc["kind"])
        if kind is None:
            continue
        assert doc["apiVersion"] == "ferry.dev/v1alpha1"
        _, errors = validate(kind, doc["spec"])
        assert errors == []
