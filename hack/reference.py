#!/usr/bin/env python3
"""Write (or check) docs/reference.md: every field of every resource, generated from ferry.api.

The reference is made from the same schemas as the CRDs, so it cannot drift from what the API
server accepts: a test runs `--check`.

    .venv/bin/python hack/reference.py           # rewrite docs/reference.md
    .venv/bin/python hack/reference.py --check   # exit 1 if it is stale
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import generated  # hack/generated.py: scripts here run with hack/ first on sys.path

from ferry.api import API_VERSION, KINDS, Kind
from ferry.api.crds import crd

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "reference.md"
HEADER = f"""# Resource reference

Generated from `ferry.api` by `python hack/reference.py`; do not edit by hand. All kinds are
namespaced, in API group/version `{API_VERSION}`, and in the category `ferry` (`kubectl get ferry`).
"""


def rows(schema: dict[str, Any], prefix: str) -> Iterator[tuple[str, str, str, str]]:
    """(field path, type, default, description) for every node under `schema`, depth first."""
    required = set(schema.get("required", []))
    for name, node in schema.get("properties", {}).items():
        path = f"{prefix}.{name}" if prefix else name
        shown = f"`{path}`" + (" (required)" if name in required else "")
        yield shown, type_of(node), default_of(node), describe(node)
        item = node.get("items", {})
        if item.get("properties"):
            yield from rows(item, f"{path}[]")
        elif node.get("properties"):
            yield from rows(node, path)


def type_of(node: dict[str, Any]) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "int or string"
    kind = node.get("type", "object")
    if kind == "array":
        return f"[]{type_of(node.get('items', {}))}"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"map[string]{type_of(node['additionalProperties'])}"
    return str(node.get("format", kind) if kind == "string" and node.get("format") == "date-time" else kind)


def default_of(node: dict[str, Any]) -> str:
    return f"`{json.dumps(node['default'])}`" if "default" in node else ""


def describe(node: dict[str, Any]) -> str:
    parts = [node.get("description", "").strip()]
    if "enum" in node:
        parts.append("One of: " + ", ".join(f"`{v}`" for v in node["enum"]) + ".")
    bounds = [f"{label} {node[key]}" for key, label in (("minimum", "min"), ("maximum", "max"),
                                                        ("minLength", "min length"), ("maxLength", "max length"),
                                                        ("minItems", "min items"), ("maxItems", "max items"))
              if key in node]
    if bounds:
        parts.append(", ".join(bounds).capitalize() + ".")
    if "pattern" in node:
        parts.append(f"Pattern `{node['pattern']}`.")
    return " ".join(p for p in parts if p).replace("|", "\\|").replace("\n", " ")


def table(header: tuple[str, ...], body: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell if cell else " " for cell in row) + " |" for row in body]
    return "\n".join(lines)


def section(kind: Kind) -> str:
    version = crd(kind)["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]["properties"]
    columns = [(c["name"], f"`{c['jsonPath']}`", "wide only" if c.get("priority") else "", c.get("description", ""))
               for c in version["additionalPrinterColumns"]]
    fields = ("Field", "Type", "Default", "Description")
    return "\n\n".join([
        f"## {kind.kind}",
        f"{kind.description} Plural `{kind.plural}`, short name `{kind.short_name}`.",
        "### Printer columns (`kubectl get`)",
        table(("Column", "From", "Shown", "Description"), columns),
        "### spec",
        table(fields, list(rows(schema["spec"], ""))),
        "### status",
        "Written by the operator (and a running Job's progress); never set it yourself.",
        table(fields, list(rows(schema["status"], ""))),
    ])


def render() -> str:
    toc = "\n".join(f"- [{k.kind}](#{k.kind.lower()})" for k in KINDS)
    return "\n\n".join([HEADER.strip(), toc, *(section(k) for k in KINDS)]) + "\n"


def main(argv: list[str] | None = None) -> int:
    return generated.main(TARGET, render, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
