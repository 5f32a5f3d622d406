"""The Helm chart on its own: Helm 4 lints it, its schema refuses bad values, and what it ships is the
same as the rest of the repository (CRDs, version, RBAC rules)."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from ferry import __version__
from tests.packaging.helm import CHART, ERROR, ROOT, chart_copy_with_values, lint


def test_helm_lints_the_chart_clean() -> None:
    messages = lint()
    assert all(severity < 2 for severity, _ in messages), messages  # at most infos (no icon)


@pytest.mark.parametrize("bad", [
    {"operator": {"replicas": -1}},
    {"operator": {"replicas": 2}},  # the operator is a single writer
    {"operator": {"logFormat": "xml"}},
    {"operator": {"watchNamespaces": ["Not_A_Namespace"]}},
    {"jobs": {"backoffLimit": -3}},
    {"jobs": {"resources": {"limits": {"memory": "lots"}}}},
    {"image": {"pullPolicy": "Sometimes"}},
    {"operatr": {"replicas": 1}},  # a typo is refused, not ignored
], ids=lambda bad: str(bad))
def test_values_schema_refuses_bad_values(tmp_path: Path, bad: dict) -> None:
    messages = lint(chart_copy_with_values(tmp_path, bad))
    assert (ERROR, "values.yaml") in messages, messages


def test_cluster_scope_off_needs_watched_namespaces(tmp_path: Path) -> None:
    messages = lint(chart_copy_with_values(tmp_path, {"rbac": {"clusterScoped": False}}))
    assert (ERROR, "values.yaml") in messages, messages
    fixed = {"rbac": {"clusterScoped": False}, "operator": {"watchNamespaces": ["ml", "ml-staging"]}}
    assert all(severity < 2 for severity, _ in lint(chart_copy_with_values(tmp_path / "ok", fixed)))


def test_chart_crds_are_the_generated_crds() -> None:
    top = {p.name: p.read_text() for p in (ROOT / "crds").glob("*.yaml")}
    chart = {p.name: p.read_text() for p in (CHART / "crds").glob("*.yaml")}
    assert top and chart.keys() == top.keys()
    stale = [name for name in top if chart[name] != top[name]]
    assert not stale, f"charts/mlflow-ferry/crds differ from crds/ in {stale}: cp crds/*.yaml charts/mlflow-ferry/crds/"


def test_chart_app_version_is_the_package_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["dynamic"]["version"] == {"attr": "ferry.__version__"}
    assert chart["appVersion"] == __version__ == importlib.metadata.version("mlflow-ferry")
    assert chart["apiVersion"] == "v2" and chart["name"] == "mlflow-ferry"


def rules(path: Path, kind: str) -> list[dict]:
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc and doc["kind"] == kind]
    assert len(docs) == 1, (path, kind)
    return docs[0]["rules"]


def test_chart_rbac_rules_are_the_ones_deploy_rbac_grants() -> None:
    """One set of rules: the operator's e2e tests bind deploy/rbac/, the chart ships files/*.yaml."""
    operator_rules = yaml.safe_load((CHART / "files" / "operator-rules.yaml").read_text())
    job_rules = yaml.safe_load((CHART / "files" / "job-rules.yaml").read_text())
    secret_rules = yaml.safe_load((CHART / "files" / "operator-secret-rules.yaml").read_text())
    rbac = ROOT / "deploy" / "rbac"
    # deploy/rbac is the default policy's: credentials Secrets must carry a label, read as metadata.
    assert rules(rbac / "operator-clusterrole.yaml", "ClusterRole") == operator_rules + secret_rules
    assert rules(rbac / "operator-role.yaml", "Role") == operator_rules + secret_rules
    assert rules(rbac / "job-role.yaml", "Role") == job_rules
    granted = {(r, v) for rule in operator_rules for r in rule["resources"] for v in rule["verbs"]}
    assert not any(resource == "secrets" for resource, _ in granted), "Secrets only for the label policy"
    tenants = [doc for doc in yaml.safe_load_all((rbac / "tenant-clusterroles.yaml").read_text())]
    assert [d["rules"] for d in tenants] == [
        yaml.safe_load((CHART / "files" / f"{role}-rules.yaml").read_text()) for role in ("edit", "view")]
    # ...which asks for labelled credentials Secrets: their metadata, by name, only.
    assert yaml.safe_load((CHART / "files" / "operator-secret-rules.yaml").read_text()) == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
    assert {v for rule in job_rules for v in rule["verbs"]} == {"patch"}
    assert all(r.endswith("/status") for rule in job_rules for r in rule["resources"])


KEY = re.compile(r"^(?P<indent> *)(?P<key>[^#\s][^:]*):")


def test_every_value_is_camel_case_and_commented() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    for number, line in enumerate(lines):
        match = KEY.match(line)
        if not match:
            continue
        key = match["key"]
        assert re.fullmatch(r"[a-z][a-zA-Z0-9]*", key), f"values.yaml:{number + 1}: {key!r} is not camelCase"
        if len(match["indent"]) <= 2:  # deeper keys (resources.requests) are described by their parent
            previous = next(lines[i] for i in range(number - 1, -1, -1) if lines[i].strip())
            assert previous.strip().startswith("#"), f"values.yaml:{number + 1}: {key!r} has no comment"


def aliases(model: type) -> dict[str, object]:
    """A model's fields by wire name, sub-models as nested dicts (the shape of a values.yaml block)."""
    out: dict[str, object] = {}
    for name, info in model.model_fields.items():
        sub = info.annotation
        out[info.alias or name] = aliases(sub) if isinstance(sub, type) and hasattr(sub, "model_fields") else None
    return out


def schema_keys(schema: dict) -> dict[str, object]:
    return {key: schema_keys(sub) if "properties" in sub else None for key, sub in schema["properties"].items()}


def test_chart_policy_is_the_operators_policy_with_the_same_defaults() -> None:
    """values.yaml's policy block, its schema and ferry.controller.policy.Policy name the same fields,
    and the chart's defaults are the model's (the safe ones)."""
    import json

    from ferry.controller.policy import Policy

    values = yaml.safe_load((CHART / "values.yaml").read_text())["policy"]
    schema = json.loads((CHART / "values.schema.json").read_text())["properties"]["policy"]
    assert Policy.model_validate(values) == Policy()
    assert schema_keys(schema) == aliases(Policy)


@pytest.mark.parametrize("bad", [
    {"policy": {"allowedImage": ["registry.example/"]}},  # a typo is refused, not ignored
    {"policy": {"resources": {"maxMemory": "lots"}}},
    {"policy": {"serviceAccounts": {"allowOverride": "yes"}}},
    {"policy": {"credentialsSecretLabel": "not a label"}},
], ids=lambda bad: str(bad))
def test_values_schema_refuses_bad_policy_values(tmp_path: Path, bad: dict) -> None:
    messages = lint(chart_copy_with_values(tmp_path, bad))
    assert (ERROR, "values.yaml") in messages, messages
