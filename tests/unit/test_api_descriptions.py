"""Every field of every resource says what it is: `kubectl explain` and docs/reference.md show it."""

from __future__ import annotations

from typing import Any

import pytest

from ferry.api.crds import crd
from ferry.api.resources import KINDS

TOP_LEVEL_SKIPPED = {"apiVersion", "kind", "metadata"}


def undescribed(node: dict[str, Any], path: str) -> list[str]:
    """Paths of the fields under `node` (object properties, array items, map values) without a description."""
    missing = []
    for name, sub in node.get("properties", {}).items():
        here = f"{path}.{name}"
        if not str(sub.get("description", "")).strip():
            missing.append(here)
        missing += undescribed(sub, here)
    if isinstance(node.get("items"), dict):
        missing += undescribed(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        missing += undescribed(node["additionalProperties"], f"{path}{{}}")
    return missing


def _root(kind: Any) -> dict[str, Any]:
    return crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_every_field_has_a_description(kind) -> None:
    root = _root(kind)
    missing = []
    for name, sub in root["properties"].items():
        if name in TOP_LEVEL_SKIPPED:
            continue
        if not str(sub.get("description", "")).strip():
            missing.append(name)
        missing += undescribed(sub, name)
    assert not missing, f"{kind.kind}: {len(missing)} field(s) without a description:\n" + "\n".join(missing)


def test_the_walk_sees_nested_fields() -> None:
    schema = {
        "properties": {
            "a": {"description": "x", "type": "array", "items": {"type": "object", "properties": {"b": {}}}},
            "c": {"description": "x", "type": "object", "additionalProperties": {"properties": {"d": {}}}},
            "e": {"description": " ", "type": "string"},
        }
    }
    assert undescribed(schema, "spec") == ["spec.a[].b", "spec.c{}.d", "spec.e"]
