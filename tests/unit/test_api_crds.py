"""The CRDs in crds/ are exactly what the models generate, and are structural and useful."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ferry.api import KINDS
from ferry.api.crds import file_name, render

CRDS = Path(__file__).resolve().parents[2] / "crds"


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_committed_crd_equals_generated(kind) -> None:
    committed = (CRDS / file_name(kind)).read_text()
    assert committed == render(kind), "crds/ is stale: run `ferry crds --output-dir crds`"


def _walk(node: dict[str, Any], path: str = "") -> list[str]:
    """Paths of schema nodes that break Kubernetes' structural-schema rules."""
    problems = []
    if not ({"type", "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields"} & node.keys()):
        problems.append(f"{path}: no type")
    if {"anyOf", "allOf", "$ref", "additionalProperties"} & node.keys() and "properties" in node:
        problems.append(f"{path}: properties mixed with a combinator")
    for branch in node.get("oneOf", []):
        if {"type", "properties", "items"} & branch.keys():
            problems.append(f"{path}: oneOf declares types")
    for name, sub in node.get("properties", {}).items():
        problems += _walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        problems += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        problems += _walk(node["additionalProperties"], f"{path}{{}}")
    return problems


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_schema_is_structural_and_names_are_set(kind) -> None:
    crd = yaml.safe_load(render(kind))
    names = crd["spec"]["names"]
    assert names["shortNames"] == [kind.short_name] and names["categories"] == ["ferry"]
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    second = "Lag" if kind.kind == "MlflowMirror" else "Progress"  # a standby's state is how far behind it is
    assert [c["name"] for c in version["additionalPrinterColumns"]][:2] == ["Phase", second]
    schema = version["schema"]["openAPIV3Schema"]
    assert _walk(schema) == []
    preserved = [p for p in _paths_with(schema, "x-kubernetes-preserve-unknown-fields")]
    assert preserved == [".spec.job.env[].valueFrom"]


def _paths_with(node: dict[str, Any], key: str, path: str = "") -> list[str]:
    found = [path] if node.get(key) else []
    for name, sub in node.get("properties", {}).items():
        found += _paths_with(sub, key, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        found += _paths_with(node["items"], key, f"{path}[]")
    return found


def test_export_schema_carries_enums_defaults_and_bounds() -> None:
    kind = next(k for k in KINDS if k.kind == "MlflowExport")
    spec = yaml.safe_load(render(kind))["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert set(spec["required"]) == {"source", "objects", "destination"}
    assert spec["properties"]["concurrencyPolicy"]["enum"] == ["Allow", "Forbid", "Replace"]
    assert spec["properties"]["concurrencyPolicy"]["default"] == "Forbid"
    assert spec["properties"]["keep"]["minimum"] == 1
    stages = spec["properties"]["options"]["properties"]["stages"]["items"]
    assert stages["enum"] == ["None", "Staging", "Production", "Archived"]
    assert spec["properties"]["source"]["properties"]["trackingUri"]["pattern"].startswith("^(https?://")
    assert spec["properties"]["objects"]["properties"]["modelVersions"]["items"]["required"] == ["model", "version"]
