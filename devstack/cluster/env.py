"""A container's environment, resolved the way the kubelet does it.

`env` entries (`value` with `$(VAR)` expansion, `valueFrom` secret/configMap keys, `fieldRef`,
`resourceFieldRef`) and `envFrom` sources. A missing non-optional Secret, ConfigMap or key raises
`ContainerConfigError`, which the kubelet reports as `CreateContainerConfigError`.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from devstack.cluster.api import Obj

Lookup = Callable[[str, str], Obj | None]  # (kind "secrets"|"configmaps", name) -> object or None

_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
# The kubelet's own wording, which users and operators match on.
_LABELS = {"secrets": "secret", "configmaps": "configmap"}
_KINDS = {"secrets": "Secret", "configmaps": "ConfigMap"}
_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
             "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": 1,
             "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}


class ContainerConfigError(Exception):
    """The container cannot be configured yet (missing Secret, ConfigMap or key)."""


def expand(text: str, env: dict[str, str]) -> str:
    """`$(VAR)` becomes VAR's value when defined; `$$` is a literal `$`; anything else stays."""
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))
    return _REFERENCE.sub(replace, text)


def parse_quantity(text: str) -> Decimal:
    match = re.fullmatch(r"([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)", str(text).strip())
    if not match or match.group(2) not in _SUFFIXES:
        raise ValueError(f"bad quantity {text!r}")
    return Decimal(match.group(1)) * Decimal(_SUFFIXES[match.group(2)])


def field_value(pod: Obj, path: str) -> str:
    """Values a `fieldRef` may name (the downward API)."""
    meta, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
    match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if match:
        return str(meta.get(match.group(1), {}).get(match.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1], {})
        return "\n".join(f'{key}="{value}"' for key, value in sorted(items.items()))
    values = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
              "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
              "spec.serviceAccountName": spec.get("serviceAccountName"),
              "status.hostIP": status.get("hostIP"), "status.podIP": status.get("podIP"),
              "status.podIPs": status.get("podIP")}
    if path not in values:
        raise ContainerConfigError(f"unsupported fieldRef {path!r}")
    return str(values[path] or "")


def resource_value(pod: Obj, container_name: str, ref: Obj, node_allocatable: dict[str, str]) -> str:
    """A `resourceFieldRef`: the container's limit (node allocatable when unset) or request."""
    container = next((c for c in pod["spec"]["containers"] if c["name"] == (ref.get("containerName") or container_name)),
                     {})
    kind, _, resource = ref["resource"].partition(".")
    resources = container.get("resources", {})
    raw = resources.get(kind, {}).get(resource)
    if raw is None:
        raw = node_allocatable.get(resource, "0") if kind == "limits" else "0"
    value = parse_quantity(raw) / parse_quantity(ref.get("divisor", "1") or "1")
    return str(math.ceil(value))


def _key(kind: str, name: str, key: str, optional: bool, lookup: Lookup) -> str | None:
    obj = lookup(kind, name)
    if obj is None:
        if optional:
            return None
        raise ContainerConfigError(f'{_LABELS[kind]} "{name}" not found')
    value = _decoded(obj, kind).get(key)
    if value is None and not optional:
        raise ContainerConfigError(f"couldn't find key {key} in {_KINDS[kind]} {obj['metadata']['namespace']}/{name}")
    return value


def _decoded(obj: Obj, kind: str) -> dict[str, str]:
    if kind == "secrets":
        return {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
    return dict(obj.get("data") or {})


def container_env(pod: Obj, container: Obj, base: dict[str, str], lookup: Lookup,
                  node_allocatable: dict[str, str]) -> dict[str, str]:
    """`base` (PATH, HOME, service variables), then envFrom, then env — later ones win, as in Kubernetes."""
    env = dict(base)
    for source in container.get("envFrom", []):
        kind, ref = (("secrets", source["secretRef"]) if "secretRef" in source
                     else ("configmaps", source.get("configMapRef", {})))
        obj = lookup(kind, ref["name"])
        if obj is None:
            if ref.get("optional"):
                continue
            raise ContainerConfigError(f'{_LABELS[kind]} "{ref["name"]}" not found')
        for key, value in _decoded(obj, kind).items():
            env[source.get("prefix", "") + key] = value
    for item in container.get("env", []):
        value = _env_value(pod, container, item, env, lookup, node_allocatable)
        if value is not None:
            env[item["name"]] = value
    return env


def _env_value(pod: Obj, container: Obj, item: Obj, env: dict[str, str], lookup: Lookup,
               node_allocatable: dict[str, str]) -> str | None:
    source: dict[str, Any] | None = item.get("valueFrom")
    if not source:
        return expand(item.get("value", ""), env)
    if "secretKeyRef" in source:
        ref = source["secretKeyRef"]
        return _key("secrets", ref["name"], ref["key"], bool(ref.get("optional")), lookup)
    if "configMapKeyRef" in source:
        ref = source["configMapKeyRef"]
        return _key("configmaps", ref["name"], ref["key"], bool(ref.get("optional")), lookup)
    if "fieldRef" in source:
        return field_value(pod, source["fieldRef"]["fieldPath"])
    if "resourceFieldRef" in source:
        return resource_value(pod, container["name"], source["resourceFieldRef"], node_allocatable)
    raise ContainerConfigError(f"unsupported valueFrom in env {item['name']!r}")
