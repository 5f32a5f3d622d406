"""Tenancy, as a cluster admin sets it up: the chart's operator, a tenant who may only create and read
our kinds in its namespace (no pods, no Secrets), and the policy in the chart's values.

Under the default policy each resource that asks for more than the operator's defaults — another
image, another ServiceAccount, a Secret key in its env, an unlabelled credentials Secret, a host not
on the list — ends FailedValidation naming the rule, gets no Job, and nothing of the Secret shows
anywhere. With values that allow them, the same resources run. The aggregated roles give `edit` and
`view` users what they expect, asked through the real API server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from devstack.cluster.logs import read_log
from devstack.cluster.pytest_plugin import wait_for
from devstack.procs import free_port
from devstack.workload import WORKLOADS, seed
from ferry.api import GROUP, KINDS
from ferry.controller.kube import METADATA_ONLY, Kube
from tests.e2e.conftest import Resources
from tests.packaging.helm import install, uninstall

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

SECRET_VALUE = "tenant-must-never-see-S3CR3T"


def can(api: client.ApiClient, verb: str, resource: str, namespace: str, group: str = GROUP) -> bool:
    """`kubectl auth can-i` as whoever `api` is: a SelfSubjectAccessReview."""
    review = client.AuthorizationV1Api(api).create_self_subject_access_review({
        "spec": {"resourceAttributes": {"namespace": namespace, "verb": verb, "group": group, "resource": resource}}})
    return bool(review.status.allowed)


def tenant_role(namespace: str) -> dict[str, Any]:
    plurals = [kind.plural for kind in KINDS]
    return {"metadata": {"name": "ferry-tenant", "namespace": namespace},
            "rules": [{"apiGroups": [GROUP], "resources": plurals, "verbs": ["create", "get", "list", "watch"]},
                      {"apiGroups": [GROUP], "resources": [f"{p}/status" for p in plurals], "verbs": ["get"]}]}


def bind(rbac: client.RbacAuthorizationV1Api, namespace: str, account: str, kind: str, role: str) -> None:
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": f"{account}-{role}"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]})


def asking(uri: str, experiment: str, claim: str) -> dict[str, dict[str, Any]]:
    """One export per thing a tenant might ask for beyond the defaults, by the rule that governs it."""
    def export(**extra: Any) -> dict[str, Any]:
        spec: dict[str, Any] = {"source": {"trackingUri": uri, "credentialsSecret": {"name": "creds"}},
                                "objects": {"experiments": [experiment]},
                                "destination": {"pvc": {"claimName": claim}}}
        for key, value in extra.items():
            spec[key] = {**spec.get(key, {}), **value}
        spec["destination"]["pvc"]["subPath"] = f"tenancy/{len(extra)}-{sorted(extra)}"
        return spec

    secret_env = {"name": "TZ", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "MLFLOW_TRACKING_TOKEN"}}}
    return {
        "policy.allowedImages": export(job={"image": "registry.example/ferry-patched:1"}),
        "policy.serviceAccounts": export(job={"serviceAccountName": "mlflow-reader"}),
        "policy.env": export(job={"env": [secret_env]}),
        "policy.env.allowedNames": export(job={"env": [{"name": "PYTHONPATH", "value": "/data/tenant-code"}]}),
        "policy.credentialsSecretLabel": export(source={"credentialsSecret": {"name": "unlabelled"}}),
        "policy.allowedTrackingHosts": export(source={"trackingUri": uri.replace("127.0.0.1", "localhost")}),
    }


# The tracking server is on this machine's loopback, where the local kubelet runs the Jobs: an
# internal address, which both policies list.
INTERNAL = {"allowedInternalHosts": ["127.0.0.1", "localhost"]}
STRICT = {"allowedTrackingHosts": ["127.0.0.1:*"], **INTERNAL}
LOOSE = {"allowedImages": ["registry.example/"],
         "serviceAccounts": {"allowOverride": True, "allowed": ["mlflow-reader"]},
         "env": {"allowValueFrom": True, "allowedNames": ["TZ", "PYTHONPATH"]}, "credentialsSecretLabel": "", **INTERNAL}


def test_a_tenant_gets_only_what_the_policy_allows(k8s_cluster, k8s_api, k8s_sa_api, mlflow_src, release,
                                                   unique: str) -> None:
    release, system, ml = release
    kubeconfig: Path = k8s_cluster.kubeconfig
    core, rbac = client.CoreV1Api(k8s_api), client.RbacAuthorizationV1Api(k8s_api)
    fullname = f"{release}-mlflow-ferry"
    experiment = next(iter(seed(mlflow_src.uri, WORKLOADS["tiny"], prefix=f"{unique}-").experiments))

    admin = Resources(k8s_api, ml)
    admin.claim("exports")
    for name, labels in (("creds", {"ferry.dev/credentials": "true"}), ("unlabelled", {})):
        core.create_namespaced_secret(ml, {"metadata": {"name": name, "labels": labels},
                                           "stringData": {"MLFLOW_TRACKING_TOKEN": SECRET_VALUE}})
    for account in ("tenant", "mlflow-reader", "editor", "viewer"):
        core.create_namespaced_service_account(ml, {"metadata": {"name": account}})
    rbac.create_namespaced_role(ml, tenant_role(ml))
    bind(rbac, ml, "tenant", "Role", "ferry-tenant")
    bind(rbac, ml, "mlflow-reader", "Role", f"{fullname}-job")  # may report progress, like the Jobs' own
    bind(rbac, ml, "editor", "ClusterRole", "edit")
    bind(rbac, ml, "viewer", "ClusterRole", "view")
    # What the operator reads of a Secret for the label rule: its metadata, never its data.
    kube = Kube(k8s_api)
    assert kube.secret_labels(ml, "creds") == {"ferry.dev/credentials": "true"}
    assert kube.secret_labels(ml, "unlabelled") == {} and kube.secret_labels(ml, "missing") is None
    raw = json.loads(kube.core.read_namespaced_secret("creds", ml, _preload_content=False,
                                                      _headers={"Accept": METADATA_ONLY}).data)
    assert raw["kind"] == "PartialObjectMetadata" and "data" not in raw
    tenant_api = k8s_sa_api(ml, "tenant")
    tenant = Resources(tenant_api, ml)
    assert not can(tenant_api, "create", "pods", ml, group="") and not can(tenant_api, "get", "secrets", ml, group="")
    assert can(tenant_api, "create", "mlflowexports", ml)

    values: dict[str, Any] = {"operator": {"watchNamespaces": [ml], "livenessPort": free_port(), "verbose": True}}
    install(kubeconfig, system, release, {**values, "policy": STRICT})

    # The built-in roles now include our kinds (ClusterRole aggregation is asynchronous).
    editor, viewer = k8s_sa_api(ml, "editor"), k8s_sa_api(ml, "viewer")
    wait_for(lambda: can(editor, "create", "mlflowexports", ml) and can(viewer, "list", "kiroframesyncs", ml),
             30, "edit and view to include the ferry kinds")
    assert can(editor, "delete", "mlflowimports", ml) and can(editor, "get", "mlflowimports/status", ml)
    assert can(editor, "create", "mlflowmirrors", ml) and can(viewer, "get", "mlflowmirrors/status", ml)
    assert not can(viewer, "create", "mlflowexports", ml) and not can(viewer, "delete", "mlflowexports", ml)

    specs = asking(mlflow_src.uri, experiment, "exports")
    for i, spec in enumerate(specs.values()):
        tenant.create("MlflowExport", f"ask-{i}", spec)
    for i, rule in enumerate(specs):
        status = tenant.wait_phase("MlflowExport", f"ask-{i}", {"FailedValidation", "Pending", "Running"}, 60)
        assert status["phase"] == "FailedValidation", (rule, status)
        assert [e.split(":")[0] for e in status["validationErrors"]] == [rule], status["validationErrors"]
        assert rule in status["message"]
    assert admin.jobs() == []

    (pod,) = core.list_namespaced_pod(system, label_selector=f"app.kubernetes.io/instance={release}").items
    log = read_log(system, pod.metadata.name, None, k8s_cluster.state_dir)
    seen = [str(tenant.get("MlflowExport", f"ask-{i}")) for i in range(len(specs))]
    seen += [f"{e.message} {e.reason}" for e in core.list_namespaced_event(ml).items]
    assert not any(SECRET_VALUE in text for text in [log, *seen])
    assert "forbidden" not in log.lower() and "Traceback" not in log, log[-3000:]

    # An admin who allows these things: the same resources run, as the accounts and images they name.
    for i in range(len(specs)):
        admin.delete("MlflowExport", f"ask-{i}")
    uninstall(kubeconfig, system, release)
    install(kubeconfig, system, release, {**values, "policy": LOOSE})
    for i, spec in enumerate(specs.values()):
        tenant.create("MlflowExport", f"run-{i}", spec)
    for i, rule in enumerate(specs):
        status = tenant.wait_phase("MlflowExport", f"run-{i}", {"Succeeded", "PartiallyFailed", "Failed",
                                                                 "FailedValidation"}, 240)
        assert status["phase"] == "Succeeded", (rule, status)
    by_name = {j.metadata.labels["ferry.dev/name"]: j.spec.template.spec for j in admin.jobs()}
    assert by_name["run-0"].containers[0].image == "registry.example/ferry-patched:1"
    assert by_name["run-1"].service_account_name == "mlflow-reader"
    assert by_name["run-2"].containers[0].env[-1].value_from.secret_key_ref.name == "creds"
