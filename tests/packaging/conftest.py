"""Fixtures of the tests that install the chart into the real control plane."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import helm_sdkpy
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.packaging.helm import uninstall


@pytest.fixture
def release(k8s_cluster, k8s_api, unique: str) -> Iterator[tuple[str, str, str]]:
    """(release, its namespace, the namespace it watches); whatever the test leaves is removed after it."""
    names = (f"ferry-{unique}", f"ferry-system-{unique}", f"ml-{unique}")
    core = client.CoreV1Api(k8s_api)
    core.create_namespace({"metadata": {"name": names[2]}})
    yield names
    with contextlib.suppress(helm_sdkpy.HelmError):
        uninstall(k8s_cluster.kubeconfig, names[1], names[0])
    for namespace in names[1:]:
        with contextlib.suppress(ApiException):
            core.delete_namespace(namespace)
