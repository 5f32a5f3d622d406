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

# Connections kept open to the API server. Every thread that talks to it needs one of its own:
# the client's default (5 per core) is below the operator's 48 handler threads plus its periodic
# look, and each request beyond the pool pays a new TCP and TLS handshake.
CONNECTION_POOL_SIZE = 64


def load_config() -> kubernetes.client.ApiClient:
    """In a pod: the ServiceAccount; elsewhere: the kubeconfig (``KUBECONFIG`` or ~/.kube/config)."""
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = CONNECTION_POOL_SIZE
    return kubernetes.client.ApiClient(configuration)


def read_body(response: Any) -> bytes:
    """The body of a raw (``_preload_content=False``) response, and its connection back to the pool.

    urllib3 keeps a raw response's connection out of the pool until it is released; one left
    unreleased costs the next request a new TCP and TLS handshake.
    """
    try:
        return bytes(response.data)
    finally:
        response.release_conn()


def patch_status(
    custom: kubernetes.client.CustomObjectsApi, kind: Kind, namespace: str, name: str, status: dict[str, Any],
    *, timeout: float | None = None,
) -> None:
    """Merge-patch ``status`` of one of our resources (a None value removes a field)."""
    read_body(custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, kind.plural, name, {"status": status},
        _content_type="application/merge-patch+json", _preload_content=False, _request_timeout=timeout,
    ))  # fmt: skip
