"""The operator, run as `ferry operator` under a ServiceAccount bound to deploy/rbac, on the real cluster.

Each test gets its own namespace with the operator's Role and the Jobs' Role from deploy/rbac, and
its own operator process watching only that namespace: a permission missing from (or a secret
read outside of) those manifests fails here, not in a user's cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, utils
from kubernetes.client.exceptions import ApiException

from devstack.cluster.pytest_plugin import wait_for
from devstack.procs import free_port, spawn, stop_pid
from ferry.api import GROUP, KINDS, VERSION
from ferry.api.resources import BY_KIND
from ferry.controller.policy import CREDENTIALS_LABEL

CREDENTIALS_LABEL_KEY, _, CREDENTIALS_LABEL_VALUE = CREDENTIALS_LABEL.partition("=")

ROOT = Path(__file__).resolve().parents[2]
RBAC = ROOT / "deploy" / "rbac"


@pytest.fixture(scope="session")
def ferry_crds(k8s_api: client.ApiClient) -> None:
    ext = client.ApiextensionsV1Api(k8s_api)
    for kind in KINDS:
        crd = yaml.safe_load((ROOT / "crds" / f"{kind.crd_name}.yaml").read_text())
        try:
            ext.create_custom_resource_definition(crd)
        except ApiException as err:
            if err.status != 409:
                raise
            crd["metadata"]["resourceVersion"] = ext.read_custom_resource_definition(kind.crd_name).metadata.resource_version
            ext.replace_custom_resource_definition(kind.crd_name, crd)

    def established() -> bool:
        for kind in KINDS:
            conditions = ext.read_custom_resource_definition(kind.crd_name).status.conditions or []
            if not any(c.type == "Established" and c.status == "True" for c in conditions):
                return False
        return True

    wait_for(established, 30, "CRDs established")


def apply_manifest(api: client.ApiClient, path: Path, namespace: str, kind_swap: dict[str, str] | None = None) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        doc["metadata"]["namespace"] = namespace
        for subject in doc.get("subjects", []):
            subject["namespace"] = namespace
        utils.create_from_dict(api, doc, namespace=namespace)


class Operator:
    """`ferry operator --namespace <ns>` as a process with the ServiceAccount's kubeconfig."""

    def __init__(self, kubeconfig: Path, namespace: str, log_path: Path, **env: str) -> None:
        self.kubeconfig, self.namespace, self.log_path = kubeconfig, namespace, log_path
        self.metrics_port = free_port()
        self.env = {
            **os.environ, "KUBECONFIG": str(kubeconfig), "FERRY_JOB_IMAGE": "mlflow-ferry:e2e",
            "FERRY_SCHEDULE_TICK_SECONDS": "1", "FERRY_METRICS_PORT": str(self.metrics_port),
            "FERRY_EXPORT_REF_GRACE_SECONDS": "15", **env,
        }  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None
        self.expected_refusals: list[tuple[datetime, datetime]] = []

    def apiserver_restarted(self, at: datetime, window: float = 60.0) -> None:
        """A test restarted the kube-apiserver at `at`: for `window` seconds it may refuse the operator
        while it loads its RBAC caches, as any freshly started API server does."""
        self.refusals_expected(at, at + timedelta(seconds=window))

    def refusals_expected(self, since: datetime, until: datetime) -> None:
        """Refusals between `since` and `until` are a test's doing (a restarted kube-apiserver still
        warming up, a permission a test took away)."""
        self.expected_refusals.append((since, until))

    def refusals(self) -> list[str]:
        """The log lines where RBAC refused the operator outside the windows a test expected it.

        A line without a time of its own (a traceback's) belongs to the last line that had one.
        """
        found, logged = [], None
        for line in self.log().splitlines():
            with contextlib.suppress(ValueError):
                logged = datetime.strptime(line[1:20], "%Y-%m-%d %H:%M:%S")
            if "Forbidden" not in line and "is forbidden" not in line:
                continue
            if logged is None or not any(start <= logged <= end for start, end in self.expected_refusals):
                found.append(line)
        return found

    def start(self) -> Operator:
        ferry = Path(sys.executable).with_name("ferry")
        self.proc = spawn([str(ferry), "operator", "--namespace", self.namespace, "--verbose"], self.log_path, env=self.env)
        return self

    def stop(self, grace: float = 10.0) -> None:
        if self.proc is not None:
            stop_pid(self.proc.pid, grace=grace)
            self.proc.wait()
            self.proc = None

    def kill(self) -> None:
        self.stop(grace=0.0)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def ferry_ns(k8s_cluster, k8s_api, k8s_namespace: str, ferry_crds: None) -> str:
    """A namespace with the operator's and the Jobs' ServiceAccounts, Roles and RoleBindings."""
    core = client.CoreV1Api(k8s_api)
    core.create_namespaced_service_account(k8s_namespace, {"metadata": {"name": "ferry-operator"}})
    apply_manifest(k8s_api, RBAC / "operator-role.yaml", k8s_namespace)
    client.RbacAuthorizationV1Api(k8s_api).create_namespaced_role_binding(k8s_namespace, {
        "metadata": {"name": "ferry-operator"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ferry-operator"},
        "subjects": [{"kind": "ServiceAccount", "name": "ferry-operator", "namespace": k8s_namespace}],
    })  # fmt: skip
    apply_manifest(k8s_api, RBAC / "job-role.yaml", k8s_namespace)
    return k8s_namespace


# The tracking servers, the S3 store and the Kiroframe stand-in listen on this machine's loopback,
# where the local kubelet runs the Jobs: an internal address, which the tests' admin lists.
LOCAL_POLICY = {"allowedInternalHosts": ["127.0.0.1"]}


@pytest.fixture
def operator(k8s_cluster, ferry_ns: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Operator]:
    """The operator under the default policy, but for loopback addresses; a test's
    ``@pytest.mark.operator_policy({...})`` loosens it further, as an admin's chart values would."""
    kubeconfig = k8s_cluster.serviceaccount_kubeconfig(ferry_ns, "ferry-operator")
    marker = request.node.get_closest_marker("operator_policy")
    policy = {**LOCAL_POLICY, **(marker.args[0] if marker else {})}
    op = Operator(kubeconfig, ferry_ns, tmp_path / "operator.log", FERRY_POLICY=json.dumps(policy)).start()
    yield op
    op.stop()
    # shown by pytest only when the test failed
    print("\n".join(line for line in op.log().splitlines() if "[DEBUG" not in line)[-8000:])
    forbidden = op.refusals()
    assert not forbidden, "the operator was refused by RBAC:\n" + "\n".join(forbidden[:5])


class Resources:
    """Create, read and wait on ferry resources in one namespace (admin rights, as a user)."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)
        self.namespace = namespace

    def create(self, kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name}, "spec": spec}
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, BY_KIND[kind].plural, body)

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, BY_KIND[kind].plural, name)

    def patch(self, kind: str, name: str, body: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, BY_KIND[kind].plural, name, body)

    def delete(self, kind: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, BY_KIND[kind].plural, name)

    def status(self, kind: str, name: str) -> dict[str, Any]:
        return self.get(kind, name).get("status") or {}

    def wait_phase(self, kind: str, name: str, phases: set[str], timeout: float = 120) -> dict[str, Any]:
        last: dict[str, Any] = {}

        def reached() -> dict[str, Any] | None:
            last.update(status=self.status(kind, name))
            return last["status"] if last["status"].get("phase") in phases else None

        try:
            return wait_for(reached, timeout, f"{kind} {name} to reach {sorted(phases)}")
        except BaseException:
            print(f"last status of {kind} {name}: {last.get('status')}")
            raise

    def jobs(self, name: str | None = None) -> list[Any]:
        selector = "ferry.dev/kind" + (f",ferry.dev/name={name}" if name else "")
        return self.batch.list_namespaced_job(self.namespace, label_selector=selector).items

    def events(self, name: str) -> list[Any]:
        return [e for e in self.core.list_namespaced_event(self.namespace).items if e.involved_object.name == name]

    def wait_event(self, name: str, reason: str, type_: str = "Normal", timeout: float = 30) -> Any:
        return wait_for(lambda: next((e for e in self.events(name) if e.reason == reason and e.type == type_), None),
                        timeout, f"{type_} event {reason} on {name}")

    def claim(self, name: str) -> None:
        self.core.create_namespaced_persistent_volume_claim(self.namespace, {
            "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        })  # fmt: skip

    def secret(self, name: str, data: dict[str, str], labels: dict[str, str] | None = None) -> None:
        """A Secret; by default one a resource may name as credentials (it carries the policy's label)."""
        labels = {CREDENTIALS_LABEL_KEY: CREDENTIALS_LABEL_VALUE} if labels is None else labels
        self.core.create_namespaced_secret(self.namespace, {"metadata": {"name": name, "labels": labels},
                                                            "stringData": data})


@pytest.fixture
def res(k8s_api, ferry_ns: str) -> Resources:
    return Resources(k8s_api, ferry_ns)


def dump(obj: Any) -> str:
    return json.dumps(client.ApiClient().sanitize_for_serialization(obj))


Waiter = Callable[..., Any]
