"""Kubernetes credentials for whoever runs: the pod's ServiceAccount, else the kubeconfig."""

from __future__ import annotations

import kubernetes


def load_config() -> kubernetes.client.ApiClient:
    """In a pod: the ServiceAccount; elsewhere: the kubeconfig (``KUBECONFIG`` or ~/.kube/config)."""
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()
    return kubernetes.client.ApiClient()
