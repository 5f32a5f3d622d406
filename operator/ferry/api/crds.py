"""CustomResourceDefinitions generated from the pydantic models, so schema and code cannot drift.

Pydantic emits JSON Schema (with ``$ref``, ``anyOf`` for optionals, ``const``); Kubernetes wants a
*structural* OpenAPI v3 schema: everything inlined, a ``type`` on every node, no ``anyOf`` of
types. `structural` translates one into the other and keeps descriptions, enums, patterns,
defaults and bounds, so the API server rejects what it can before the operator ever sees it.

Run ``python -m ferry.api.crds [--output-dir crds]`` (or ``ferry crds``) to write the YAML files.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from ferry.api.resources import CATEGORY, GROUP, KINDS, VERSION, Kind

KEPT = (
    "type", "format", "description", "enum", "pattern", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems", "default", "oneOf",
    "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string",
)  # fmt: skip


def structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """One pydantic JSON Schema node as a structural OpenAPI v3 node."""
    node = _flatten(node, defs)
    out: dict[str, Any] = {k: node[k] for k in KEPT if k in node}
    if "const" in node:
        out["enum"] = [node["const"]]
    if node.get("x-kubernetes-preserve-unknown-fields"):
        out["type"] = "object"
        return out
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        return out
    kind = out.get("type")
    if kind == "object":
        props = node.get("properties")
        if props:
            out["properties"] = {name: structural(sub, defs) for name, sub in props.items()}
            if node.get("required"):
                out["required"] = list(node["required"])
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and not props:
            out["additionalProperties"] = structural(extra, defs)
        elif not props:
            out["x-kubernetes-preserve-unknown-fields"] = True
    elif kind == "array":
        out["items"] = structural(node.get("items", {}), defs)
    if "type" not in out and "x-kubernetes-preserve-unknown-fields" not in out:
        raise ValueError(f"schema node without a type: {node}")
    return out


def _flatten(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Inline ``$ref``/``allOf`` and drop the ``null`` branch of optionals (absent means unset)."""
    node = dict(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        node = {**target, **node}
    if "allOf" in node and len(node["allOf"]) == 1:
        node = {**_flatten(node.pop("allOf")[0], defs), **node}
    if "anyOf" in node:
        branches = [_flatten(b, defs) for b in node.pop("anyOf") if b.get("type") != "null"]
        if len(branches) == 1:
            node = {**branches[0], **{k: v for k, v in node.items() if k != "default" or v is not None}}
        elif {b.get("type") for b in branches} == {"integer", "string"}:
            node["x-kubernetes-int-or-string"] = True
        else:
            raise ValueError(f"cannot express a union of {branches} structurally")
    if node.get("default", 0) in (None, ""):  # an empty default says nothing (and 1.20 reads "" as null)
        node.pop("default")
    return node


def model_schema(model: Any) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    return structural(schema, schema.get("$defs", {}))


def crd(kind: Kind) -> dict[str, Any]:
    spec_schema = model_schema(kind.spec)
    status_schema = model_schema(kind.status)
    root = {
        "type": "object",
        "description": kind.description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
    }
    columns = [
        {
            "name": c.name,
            "type": c.type,
            "jsonPath": c.json_path,
            **({"priority": c.priority} if c.priority else {}),
            **({"description": c.description} if c.description else {}),
        }
        for c in kind.columns
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name, "labels": {"app.kubernetes.io/name": "mlflow-ferry"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": [kind.short_name],
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


class _NoAliases(yaml.SafeDumper):
    """Shared schema parts (an enum used twice) are written out in full, never as YAML anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render(kind: Kind) -> str:
    header = "# Generated from ferry.api by `ferry crds`; do not edit by hand.\n"
    return header + yaml.dump(crd(kind), Dumper=_NoAliases, sort_keys=False, width=120)


def file_name(kind: Kind) -> str:
    return f"{kind.crd_name}.yaml"


def write(output_dir: Path) -> list[Path]:
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in KINDS:
        path = output_dir / file_name(kind)
        path.write_text(render(kind))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ferry.api.crds", description=__doc__.split("\n")[0])
    parser.add_argument("--output-dir", type=Path, default=Path("crds"))
    args = parser.parse_args(argv)
    for path in write(args.output_dir):
        print(path)


if __name__ == "__main__":
    main()
