"""The chart installed with the Helm 4 SDK into the real control plane, and used.

The operator's pod runs through the local kubelet under the chart's ServiceAccount and RBAC (its
command is the one the chart renders), and moves real data between the two MLflow servers; then
`helm uninstall` takes away what the chart made and leaves what Helm promises to leave: the CRDs
and the users' own resources.
"""

from __future__ import annotations

from pathlib import Path

import helm_sdkpy
import pytest
import yaml
from kubernetes import client

from devstack.cluster.logs import read_log
from devstack.compare import differences, snapshot
from devstack.procs import free_port
from devstack.workload import WORKLOADS, seed
from ferry.api import KINDS
from tests.e2e.conftest import Resources
from tests.packaging.helm import install, uninstall
from tests.packaging.newer_kubernetes import problems

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def names_in(api: client.ApiClient, namespace: str, release: str) -> dict[str, list[str]]:
    """Objects labelled with the release, by kind (what `helm uninstall` must remove)."""
    selector = f"app.kubernetes.io/instance={release}"
    core, apps, rbac = client.CoreV1Api(api), client.AppsV1Api(api), client.RbacAuthorizationV1Api(api)
    listed = {
        "deployments": apps.list_namespaced_deployment(namespace, label_selector=selector).items,
        "serviceaccounts": core.list_service_account_for_all_namespaces(label_selector=selector).items,
        "roles": rbac.list_role_for_all_namespaces(label_selector=selector).items,
        "rolebindings": rbac.list_role_binding_for_all_namespaces(label_selector=selector).items,
        "clusterroles": rbac.list_cluster_role(label_selector=selector).items,
        "clusterrolebindings": rbac.list_cluster_role_binding(label_selector=selector).items,
        "networkpolicies": client.NetworkingV1Api(api).list_network_policy_for_all_namespaces(
            label_selector=selector).items,
    }
    return {kind: sorted(f"{o.metadata.namespace or ''}/{o.metadata.name}" for o in items)
            for kind, items in listed.items()}


def test_chart_installs_an_operator_that_exports_and_imports(k8s_cluster, k8s_api, mlflow_src, mlflow_dst,
                                                             release: tuple[str, str, str], unique: str) -> None:
    release, system, ml = release
    kubeconfig: Path = k8s_cluster.kubeconfig
    core = client.CoreV1Api(k8s_api)
    values = {"operator": {"watchNamespaces": [ml], "livenessPort": free_port(), "verbose": True},
              "policy": {"allowedInternalHosts": ["127.0.0.1"]},  # the tracking servers listen on loopback
              "networkPolicy": {"enabled": True, "egress": [{"to": [{"ipBlock": {"cidr": "127.0.0.1/32"}}]}]}}

    # Bad values are refused by the schema before anything of the release is made.
    for bad, words in (({"replicas": -1}, "replicas"), ({"logFormat": "xml"}, "logFormat")):
        with pytest.raises(helm_sdkpy.InstallError) as refused:
            install(kubeconfig, system, release, {"operator": {**values["operator"], **bad}})
        assert "values don't meet the specifications of the schema" in str(refused.value), refused.value
        assert words in str(refused.value)
    assert not any(names_in(k8s_api, system, release).values())

    seeded = seed(mlflow_src.uri, WORKLOADS["tiny"], prefix=f"{unique}-")
    (experiment,), (model,) = seeded.experiments, seeded.models
    installed = install(kubeconfig, system, release, values)
    assert installed["info"]["status"] == "deployed"
    rendered = [doc for doc in yaml.safe_load_all(installed["manifest"]) if doc]
    assert len(rendered) >= 5 and problems(rendered) == []  # valid for Kubernetes 1.28 and newer too
    made = names_in(k8s_api, system, release)
    fullname = f"{release}-mlflow-ferry"
    assert made["deployments"] == [f"{system}/{fullname}"]
    assert made["clusterroles"] == [f"/{fullname}", f"/{fullname}-edit", f"/{fullname}-view"]
    assert made["clusterrolebindings"] == [f"/{fullname}"]
    assert made["serviceaccounts"] == sorted([f"{system}/{fullname}", f"{system}/{fullname}-job", f"{ml}/{fullname}-job"])

    (pod,) = core.list_namespaced_pod(system, label_selector=f"app.kubernetes.io/instance={release}").items
    assert pod.spec.service_account_name == fullname
    container = pod.spec.containers[0]
    assert [*container.command, *container.args][:3] == ["ferry", "operator", f"--namespace={ml}"]

    # The Jobs' egress: DNS and what networkPolicy.egress lists, in every namespace they run in.
    networking = client.NetworkingV1Api(k8s_api)
    for namespace in (system, ml):
        policy = networking.read_namespaced_network_policy(f"{fullname}-jobs", namespace)
        assert policy.spec.policy_types == ["Egress"]
        assert [(e.key, e.operator) for e in policy.spec.pod_selector.match_expressions] == [("ferry.dev/kind", "Exists")]
        dns, listed = policy.spec.egress
        assert dns.to[0].pod_selector.match_labels == {"k8s-app": "kube-dns"}
        assert sorted((p.protocol, p.port) for p in dns.ports) == [("TCP", 53), ("UDP", 53)]
        assert listed.to[0].ip_block.cidr == "127.0.0.1/32"

    res = Resources(k8s_api, ml)
    res.claim("exports")
    res.create("MlflowExport", "backup", {
        "source": {"trackingUri": mlflow_src.uri},
        "objects": {"experiments": [experiment], "models": [model]},
        "destination": {"pvc": {"claimName": "exports", "subPath": unique}},
    })
    res.create("MlflowImport", "restore", {
        "destination": {"trackingUri": mlflow_dst.uri},
        "source": {"exportRef": {"name": "backup"}},
    })
    exported = res.wait_phase("MlflowExport", "backup", {"Succeeded", "PartiallyFailed", "Failed"}, timeout=120)
    assert exported["phase"] == "Succeeded", exported
    imported = res.wait_phase("MlflowImport", "restore", {"Succeeded", "PartiallyFailed", "Failed"}, timeout=120)
    assert imported["phase"] == "Succeeded", imported
    assert imported["counts"]["runs"] >= seeded.runs
    jobs = res.jobs()
    assert len(jobs) == 2 and {j.spec.template.spec.service_account_name for j in jobs} == {f"{fullname}-job"}
    assert all("ferry.dev/kind" in j.spec.template.metadata.labels for j in jobs)  # the NetworkPolicy's pods

    source = snapshot(mlflow_src.uri, [experiment], [model])
    destination = snapshot(mlflow_dst.uri, [experiment], [model])
    assert len(source["experiments"][experiment]["runs"]) == 12
    assert not differences(source, destination), differences(source, destination)[:20]

    log = read_log(system, pod.metadata.name, None, k8s_cluster.state_dir)
    assert "forbidden" not in log.lower(), log[-2000:]

    uninstall(kubeconfig, system, release)
    assert not any(names_in(k8s_api, system, release).values())
    ext = client.ApiextensionsV1Api(k8s_api)
    assert all(ext.read_custom_resource_definition(kind.crd_name) for kind in KINDS)
    assert res.get("MlflowExport", "backup")["status"]["phase"] == "Succeeded"
    assert res.get("MlflowImport", "restore")["status"]["phase"] == "Succeeded"
