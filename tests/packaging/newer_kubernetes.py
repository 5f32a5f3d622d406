"""What we render, checked against the OpenAPI schemas of current Kubernetes releases.

Our real control plane is v1.20, the newest API server that builds here; `kubernetes-validate`
ships the schemas of the releases since. Strict: a field a newer release dropped is an error,
and an apiVersion a newer release removed has no schema at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import kubernetes_validate
from kubernetes_validate import utils

OLDEST = (1, 28)


def versions() -> list[str]:
    """Every release from 1.28 to the newest the package ships, one patch version each."""
    found = {v for v in utils.all_versions() if tuple(map(int, v.split(".")[:2])) >= OLDEST}
    return sorted(found, key=lambda v: tuple(map(int, v.split("."))))


def problems(documents: Iterable[dict[str, Any]]) -> list[str]:
    """One line per document and release it does not validate against."""
    found = []
    for doc in documents:
        name = f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
        for version in versions():
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                found.append(f"{name}: {doc.get('apiVersion')} is not served by Kubernetes {version}")
            except kubernetes_validate.ValidationError as err:
                found.append(f"{name} on {version}: {err.message} at {'.'.join(map(str, err.path))}")
    return found
