"""Kubeconfig files: the admin's, and one minted for any ServiceAccount.

Operator tests run the operator with a ServiceAccount's kubeconfig, so it has exactly the rights
its chart's RBAC grants — no more, which is how a missing rule shows up as a 403 in a test.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

import yaml

from devstack.cluster.api import Api


def write_kubeconfig(path: Path, server: str, ca_file: Path, user: str, token: str,
                     namespace: str = "default") -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "ferry-local", "cluster": {"server": server, "certificate-authority": str(ca_file)}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": "ferry-local", "user": user, "namespace": namespace}}],
        "current-context": user,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


def serviceaccount_token(api: Api, namespace: str, name: str, timeout: float = 60.0) -> str:
    """The token of a ServiceAccount, read from the Secret the token controller makes (1.20).

    The ServiceAccount and its Secret appear asynchronously, so this waits for both, and for the
    ServiceAccount to list the Secret: until it does, the ServiceAccount admission plugin refuses
    pods ("No API token found for service account").
    """
    deadline = time.monotonic() + timeout
    while True:
        secrets = api.request("GET", f"/api/v1/namespaces/{namespace}/secrets",
                              params={"fieldSelector": "type=kubernetes.io/service-account-token"}) or {}
        account = api.request("GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}", ok_missing=True) or {}
        listed = {ref.get("name") for ref in account.get("secrets") or []}
        for secret in secrets.get("items", []):
            annotations = secret["metadata"].get("annotations", {})
            token = secret.get("data", {}).get("token")
            if (annotations.get("kubernetes.io/service-account.name") == name and token
                    and secret["metadata"]["name"] in listed):
                return base64.b64decode(token).decode()
        if time.monotonic() > deadline:
            raise TimeoutError(f"no token Secret for ServiceAccount {namespace}/{name} after {timeout:.0f} s")
        time.sleep(0.2)

