"""The local cluster behaves like a real one, seen through the real API: Jobs, deadlines, owners,
Deployments, env and volumes, termination messages and RBAC inside a pod."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from devstack.cluster import Cluster, read_log
from devstack.cluster.pytest_plugin import wait_for

pytestmark = pytest.mark.cluster


def job(name: str, script: str, *, backoff: int = 0, deadline: int | None = None, claim: str | None = None,
        env: list[dict[str, Any]] | None = None, owner: dict[str, Any] | None = None,
        account: str | None = None) -> dict[str, Any]:
    """A Job running `sh -c script`, optionally with a claim mounted at /data."""
    container: dict[str, Any] = {"name": "main", "image": "ignored", "command": ["sh", "-c", script],
                                 "env": env or []}
    pod_spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    if claim:
        container["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
        pod_spec["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]
    if account:
        pod_spec["serviceAccountName"] = account
    spec: dict[str, Any] = {"backoffLimit": backoff, "template": {"spec": pod_spec}}
    if deadline is not None:
        spec["activeDeadlineSeconds"] = deadline
    metadata: dict[str, Any] = {"name": name}
    if owner:
        metadata["ownerReferences"] = [owner]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec}


def make_claim(core: client.CoreV1Api, namespace: str, name: str = "data") -> str:
    core.create_namespaced_persistent_volume_claim(namespace, {
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    })
    return name


def job_condition(batch: client.BatchV1Api, namespace: str, name: str) -> client.V1JobCondition | None:
    conditions = batch.read_namespaced_job_status(name, namespace).status.conditions or []
    return next((c for c in conditions if c.status == "True" and c.type in ("Complete", "Failed")), None)


def job_pods(core: client.CoreV1Api, namespace: str, name: str) -> list[client.V1Pod]:
    return core.list_namespaced_pod(namespace, label_selector=f"job-name={name}").items


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return False


def written_pid(path: Path) -> int:
    return int(wait_for(lambda: path.exists() and path.read_text().strip(), what=f"a pid in {path}"))


@pytest.fixture
def core(k8s_api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(k8s_api)


@pytest.fixture
def batch(k8s_api: client.ApiClient) -> client.BatchV1Api:
    return client.BatchV1Api(k8s_api)


def test_job_completes_with_termination_message(core: client.CoreV1Api, batch: client.BatchV1Api,
                                                k8s_namespace: str, k8s_cluster: Cluster) -> None:
    message = {"phase": "Succeeded", "counts": {"runs": 3}}
    batch.create_namespaced_job(k8s_namespace, job(
        "ok", f"echo to-the-log; printf '%s' '{json.dumps(message)}' > /dev/termination-log"))

    condition = wait_for(lambda: job_condition(batch, k8s_namespace, "ok"), what="Job ok to finish")
    assert condition.type == "Complete"
    (pod,) = job_pods(core, k8s_namespace, "ok")
    assert pod.status.phase == "Succeeded"
    assert pod.spec.node_name == "ferry-node"
    (status,) = pod.status.container_statuses
    assert status.state.terminated.exit_code == 0
    assert status.state.terminated.reason == "Completed"
    assert json.loads(status.state.terminated.message) == message
    assert read_log(k8s_namespace, pod.metadata.name) == "to-the-log\n"


def test_failing_job_fails_after_backoff_limit(core: client.CoreV1Api, batch: client.BatchV1Api,
                                               k8s_namespace: str) -> None:
    batch.create_namespaced_job(k8s_namespace, job("bad", "echo broken >&2; exit 3", backoff=1))

    condition = wait_for(lambda: job_condition(batch, k8s_namespace, "bad"), timeout=90, what="Job bad to fail")
    assert (condition.type, condition.reason) == ("Failed", "BackoffLimitExceeded")
    pods = job_pods(core, k8s_namespace, "bad")
    assert len(pods) == 2
    for pod in pods:
        assert pod.status.phase == "Failed"
        terminated = pod.status.container_statuses[0].state.terminated
        assert (terminated.exit_code, terminated.reason) == (3, "Error")


def test_active_deadline_kills_the_process(core: client.CoreV1Api, batch: client.BatchV1Api,
                                           k8s_namespace: str, k8s_cluster: Cluster) -> None:
    claim = make_claim(core, k8s_namespace)
    batch.create_namespaced_job(k8s_namespace, job("slow", "echo $$$$ > /data/pid; exec sleep 300",
                                                   deadline=3, claim=claim))
    pid = written_pid(k8s_cluster.claim_path(k8s_namespace, claim) / "pid")
    assert pid_alive(pid)

    condition = wait_for(lambda: job_condition(batch, k8s_namespace, "slow"), what="Job slow to hit its deadline")
    # The deadline fails the Job. Kubernetes 1.20's job controller can then relabel it: when the pod
    # it just stopped shows up as Failed before its own status write reaches its Job cache, the next
    # sync counts a "new" failure and overwrites DeadlineExceeded with BackoffLimitExceeded.
    assert condition.type == "Failed"
    assert condition.reason in ("DeadlineExceeded", "BackoffLimitExceeded")
    started = batch.read_namespaced_job_status("slow", k8s_namespace).status.start_time
    assert (condition.last_transition_time - started).total_seconds() >= 3, "failed before its deadline"
    wait_for(lambda: not pid_alive(pid), what=f"process {pid} to be killed")
    (pod,) = job_pods(core, k8s_namespace, "slow") or [None]
    if pod is not None and pod.status.container_statuses:
        terminated = pod.status.container_statuses[0].state.terminated
        assert terminated is None or terminated.exit_code in (137, 143), "the process ended by itself"


def test_env_from_secret_configmap_and_fields_and_claim_reach_the_process(
        core: client.CoreV1Api, batch: client.BatchV1Api, k8s_namespace: str, k8s_cluster: Cluster) -> None:
    core.create_namespaced_secret(k8s_namespace, {"metadata": {"name": "creds"},
                                                  "data": {"token": base64.b64encode(b"s3cr3t").decode()}})
    core.create_namespaced_config_map(k8s_namespace, {"metadata": {"name": "settings"}, "data": {"LEVEL": "debug"}})
    claim = make_claim(core, k8s_namespace)
    env = [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "LEVEL"}}},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "GREETING", "value": "level=$(LEVEL)"},
    ]
    script = 'printf "%s|%s|%s|%s|%s" "$TOKEN" "$LEVEL" "$POD" "$GREETING" "$(id -u)" > /data/env.txt'
    batch.create_namespaced_job(k8s_namespace, job("envs", script, claim=claim, env=env))

    wait_for(lambda: job_condition(batch, k8s_namespace, "envs"), what="Job envs to finish")
    (pod,) = job_pods(core, k8s_namespace, "envs")
    written = (k8s_cluster.claim_path(k8s_namespace, claim) / "env.txt").read_text().split("|")
    assert written[:4] == ["s3cr3t", "debug", pod.metadata.name, "level=debug"]


def test_missing_secret_is_a_create_container_config_error(core: client.CoreV1Api, k8s_namespace: str) -> None:
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "token"}}}]
    core.create_namespaced_pod(k8s_namespace, {
        "metadata": {"name": "waits"},
        "spec": {"restartPolicy": "Never",
                 "containers": [{"name": "main", "image": "ignored", "command": ["true"], "env": env}]}})

    def waiting() -> client.V1ContainerStateWaiting | None:
        statuses = core.read_namespaced_pod_status("waits", k8s_namespace).status.container_statuses or []
        state = statuses[0].state.waiting if statuses else None
        return state if state and state.reason == "CreateContainerConfigError" else None

    assert wait_for(waiting, what="CreateContainerConfigError").message == 'secret "absent" not found'
    assert core.read_namespaced_pod_status("waits", k8s_namespace).status.phase == "Pending"


def test_deleting_the_owner_removes_job_pod_and_process(core: client.CoreV1Api, batch: client.BatchV1Api,
                                                        k8s_namespace: str, k8s_cluster: Cluster) -> None:
    owner = core.create_namespaced_config_map(k8s_namespace, {"metadata": {"name": "owner"}})
    reference = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid,
                 "controller": True, "blockOwnerDeletion": True}
    claim = make_claim(core, k8s_namespace)
    batch.create_namespaced_job(k8s_namespace, job("owned", "echo $$$$ > /data/pid; exec sleep 300",
                                                   claim=claim, owner=reference))
    pid = written_pid(k8s_cluster.claim_path(k8s_namespace, claim) / "pid")

    core.delete_namespaced_config_map("owner", k8s_namespace, propagation_policy="Background")

    wait_for(lambda: not batch.list_namespaced_job(k8s_namespace).items, what="the Job to be collected")
    wait_for(lambda: not job_pods(core, k8s_namespace, "owned"), what="the pod to be collected")
    wait_for(lambda: not pid_alive(pid), what=f"process {pid} to be stopped")


def test_deployment_pod_runs_and_is_restarted_when_its_process_dies(
        k8s_api: client.ApiClient, core: client.CoreV1Api, k8s_namespace: str, k8s_cluster: Cluster) -> None:
    claim = make_claim(core, k8s_namespace)
    labels = {"app": "server"}
    client.AppsV1Api(k8s_api).create_namespaced_deployment(k8s_namespace, {
        "metadata": {"name": "server"},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "main", "image": "ignored",
                                     "command": ["sh", "-c", "echo $$$$ > /data/pid.$(date +%s%N); exec sleep 300"],
                                     "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                     "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}}}})
    pids_dir = k8s_cluster.claim_path(k8s_namespace, claim)

    def pod_running(restarts: int) -> client.V1Pod | None:
        pods = core.list_namespaced_pod(k8s_namespace, label_selector="app=server").items
        ready = [p for p in pods if p.status.phase == "Running" and p.status.container_statuses
                 and p.status.container_statuses[0].ready
                 and p.status.container_statuses[0].restart_count == restarts]
        return ready[0] if ready else None

    first = wait_for(lambda: pod_running(0), what="the Deployment's pod to run")
    (pid_file,) = wait_for(lambda: list(pids_dir.glob("pid.*")), what="the first pid")
    os.kill(int(pid_file.read_text()), signal.SIGKILL)

    again = wait_for(lambda: pod_running(1), what="the container to be restarted")
    assert again.metadata.uid == first.metadata.uid
    assert again.status.container_statuses[0].last_state.terminated.exit_code == 137
    assert len(wait_for(lambda: len(list(pids_dir.glob("pid.*"))) == 2 and list(pids_dir.glob("pid.*")),
                        what="the second pid")) == 2


def test_serviceaccount_without_rights_is_forbidden_inside_a_pod(
        core: client.CoreV1Api, batch: client.BatchV1Api, k8s_namespace: str,
        k8s_sa_api: Callable[[str, str], client.ApiClient]) -> None:
    core.create_namespaced_service_account(k8s_namespace, {"metadata": {"name": "nobody"}})
    probe = ("import kubernetes as k\n"
             "k.config.load_incluster_config()\n"
             "try:\n"
             "    k.client.CoreV1Api().list_namespaced_pod(open('/var/run/secrets/kubernetes.io/serviceaccount/namespace').read())\n"
             "    answer = 'allowed'\n"
             "except k.client.exceptions.ApiException as error:\n"
             "    answer = str(error.status)\n"
             "open('/dev/termination-log', 'w').write(answer)\n")
    manifest = job("probe", "exec python -c \"$PROBE\"", account="nobody", env=[{"name": "PROBE", "value": probe}])
    batch.create_namespaced_job(k8s_namespace, manifest)

    condition = wait_for(lambda: job_condition(batch, k8s_namespace, "probe"), what="Job probe to finish")
    (pod,) = job_pods(core, k8s_namespace, "probe")
    assert condition.type == "Complete", read_log(k8s_namespace, pod.metadata.name)
    assert pod.status.container_statuses[0].state.terminated.message == "403"
    with pytest.raises(ApiException) as outside:
        client.CoreV1Api(k8s_sa_api(k8s_namespace, "nobody")).list_namespaced_pod(k8s_namespace)
    assert outside.value.status == 403


def finished_pod(core: client.CoreV1Api, namespace: str, name: str) -> client.V1Pod:
    def done() -> client.V1Pod | None:
        pod = core.read_namespaced_pod_status(name, namespace)
        return pod if pod.status.phase in ("Succeeded", "Failed") else None
    return wait_for(done, what=f"pod {name} to finish")


def test_init_container_empty_dir_and_restart_on_failure(core: client.CoreV1Api, k8s_namespace: str) -> None:
    main = ("if [ -f /work/tried ]; then cat /work/seed > /dev/termination-log; exit 0; fi; "
            "touch /work/tried; exit 1")
    mount = [{"name": "work", "mountPath": "/work"}]
    core.create_namespaced_pod(k8s_namespace, {"metadata": {"name": "retry"}, "spec": {
        "restartPolicy": "OnFailure", "volumes": [{"name": "work", "emptyDir": {}}],
        "initContainers": [{"name": "seed", "image": "ignored", "volumeMounts": mount,
                            "command": ["sh", "-c", "echo seeded-by-init > /work/seed"]}],
        "containers": [{"name": "main", "image": "ignored", "volumeMounts": mount, "command": ["sh", "-c", main]}]}})

    pod = finished_pod(core, k8s_namespace, "retry")
    assert pod.status.phase == "Succeeded"
    assert pod.status.init_container_statuses[0].state.terminated.reason == "Completed"
    (status,) = pod.status.container_statuses
    assert status.restart_count == 1
    assert status.last_state.terminated.exit_code == 1
    assert status.state.terminated.message == "seeded-by-init\n"


def test_fallback_to_logs_and_a_missing_command(core: client.CoreV1Api, k8s_namespace: str) -> None:
    core.create_namespaced_pod(k8s_namespace, {"metadata": {"name": "broken"}, "spec": {
        "restartPolicy": "Never", "containers": [
            {"name": "talks", "image": "ignored", "command": ["sh", "-c", "echo first; echo last words; exit 2"],
             "terminationMessagePolicy": "FallbackToLogsOnError"},
            {"name": "absent", "image": "ignored", "command": ["no-such-command-here"]}]}})

    pod = finished_pod(core, k8s_namespace, "broken")
    assert pod.status.phase == "Failed"
    talks, absent = sorted(pod.status.container_statuses, key=lambda s: s.name != "talks")
    assert (talks.state.terminated.exit_code, talks.state.terminated.message) == (2, "first\nlast words")
    assert (absent.state.terminated.exit_code, absent.state.terminated.reason) == (128, "StartError")
    assert absent.state.terminated.message == 'exec: "no-such-command-here": executable file not found in $PATH'
