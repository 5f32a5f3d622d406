"""Kubernetes access shared by the operator and its Jobs: credentials and the status patch.

Both sides write one thing the same way: a merge patch of a resource's ``status`` subresource.
The operator does it for the phase and the result, a Job for its own ``status.progress``; the
patch bodies come from the status models (`ferry.api.common.StatusModel.wire`). Knows nothing
of MLflow.
"""

from __future__ import annotations

from typing import Any

import kubernetes

from ferry.api import GROUP, VERSION, Kind


def load_config() -> kubernetes.client.ApiClient:
    """In a pod: the ServiceAccount; elsewhere: the kubeconfig (``KUBECONFIG`` or ~/.kube/config)."""
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()
    return kubernetes.client.ApiClient()


def patch_status(
    custom: kubernetes.client.CustomObjectsApi, kind: Kind, namespace: str, name: str, status: dict[str, Any],
    *, timeout: float | None = None,
) -> None:
    """Merge-patch ``status`` of one of our resources (a None value removes a field)."""
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, kind.plural, name, {"status": status},
        _content_type="application/merge-patch+json", _preload_content=False, _request_timeout=timeout,
    )  # fmt: skip
