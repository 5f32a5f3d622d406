"""The local kubelet: a real controller against the API server that runs pods as local processes.

It registers one Node (Ready, with this machine's capacity), keeps its Lease fresh, binds pods
that no scheduler placed (none runs here) while fewer than `--max-pods` are active, and gives each
pod a `PodWorker` thread. Started by `python -m devstack.cluster up`, recorded by pid, logging to
`<state>/logs/kubelet.log`. There is no kubelet API: `kubectl logs/exec` do not work; container
logs are files (see `devstack.cluster.logs`).

Run by hand::

    python -m devstack.cluster.kubelet --state-dir ~/.cache/ferry-k8s/run [--pod-path PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import requests

from devstack.cluster.api import Api, ApiError, Obj
from devstack.cluster.paths import K8S_VERSION, StateDir
from devstack.cluster.pki import Pki
from devstack.cluster.pod_worker import TERMINAL, NodeConfig, PodWorker, now_rfc3339

log = logging.getLogger("kubelet")

LEASE_SECONDS = 40
LEASE_RENEW_EVERY = 10.0
NODE_STATUS_EVERY = 60.0
PASSTHROUGH = ("LANG", "LC_ALL", "TZ")


class Shutdown(Exception):
    """SIGTERM or SIGINT: stop every pod's processes and leave."""


class Kubelet:
    def __init__(self, config: NodeConfig, max_pods: int) -> None:
        self.config = config
        self.api = config.api
        self.max_pods = max_pods
        self.lock = threading.Lock()
        self.workers: dict[str, PodWorker] = {}
        self.waiting: dict[str, Obj] = {}  # unbound pods beyond max_pods, in arrival order
        self.finished: set[str] = set()  # uids of terminal pods on this node
        self.stopping = threading.Event()

    # -- node ----------------------------------------------------------------------------------
    def node_object(self) -> Obj:
        stamp = now_rfc3339()
        conditions = [
            {"type": kind, "status": "False", "reason": f"KubeletHasSufficient{what}",
             "message": f"kubelet has sufficient {what.lower()}", "lastHeartbeatTime": stamp,
             "lastTransitionTime": stamp}
            for kind, what in (("MemoryPressure", "Memory"), ("DiskPressure", "Disk"), ("PIDPressure", "PID"))
        ]
        conditions.append({"type": "Ready", "status": "True", "reason": "KubeletReady",
                           "message": "local kubelet is posting ready status", "lastHeartbeatTime": stamp,
                           "lastTransitionTime": stamp})
        capacity = self.config.node_allocatable
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
        return {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": self.config.node_name,
                         "labels": {"kubernetes.io/hostname": self.config.node_name, "kubernetes.io/os": "linux",
                                    "kubernetes.io/arch": arch, "beta.kubernetes.io/os": "linux",
                                    "beta.kubernetes.io/arch": arch}},
            "status": {
                "capacity": capacity, "allocatable": capacity, "conditions": conditions,
                "addresses": [{"type": "InternalIP", "address": self.config.host_ip},
                              {"type": "Hostname", "address": self.config.node_name}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
                "nodeInfo": {"kubeletVersion": K8S_VERSION, "kubeProxyVersion": K8S_VERSION,
                             "operatingSystem": "linux", "architecture": arch,
                             "containerRuntimeVersion": "ferry-local://1", "osImage": platform.platform(),
                             "kernelVersion": platform.release(), "machineID": "", "systemUUID": "",
                             "bootID": ""},
            },
        }

    def register(self) -> None:
        node = self.node_object()
        try:
            self.api.post("/api/v1/nodes", node)
        except ApiError as error:
            if error.status != 409:
                raise
        self.api.merge_patch(f"/api/v1/nodes/{self.config.node_name}/status", {"status": node["status"]})
        log.info("node %s registered", self.config.node_name)

    def heartbeat(self) -> None:
        """Renew the node's Lease every 10 s and its Ready condition every minute."""
        last_status = time.monotonic()
        while not self.stopping.wait(LEASE_RENEW_EVERY):
            try:
                self._renew_lease()
                if time.monotonic() - last_status >= NODE_STATUS_EVERY:
                    if self.api.get(f"/api/v1/nodes/{self.config.node_name}") is None:
                        self.register()
                    else:
                        status = self.node_object()["status"]
                        self.api.merge_patch(f"/api/v1/nodes/{self.config.node_name}/status",
                                             {"status": {"conditions": status["conditions"]}})
                    last_status = time.monotonic()
            except (ApiError, requests.RequestException) as error:
                log.warning("heartbeat failed: %s", error)

    def _renew_lease(self) -> None:
        name = self.config.node_name
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"
        renew = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
        spec = {"holderIdentity": name, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": renew}
        if self.api.merge_patch(path, {"spec": spec}) is None:
            with contextlib.suppress(ApiError):
                self.api.post("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                              {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                               "metadata": {"name": name}, "spec": spec})

    # -- pods ----------------------------------------------------------------------------------
    def sync(self) -> None:
        """List every pod, reconcile what we track with it, then follow the watch; relist on 410."""
        while not self.stopping.is_set():
            try:
                listing = self.api.request("GET", "/api/v1/pods") or {}
                present = {pod["metadata"]["uid"] for pod in listing.get("items", [])}
                self._forget_missing(present)
                for pod in listing.get("items", []):
                    self.handle("ADDED", pod)
                version = listing["metadata"]["resourceVersion"]
                while not self.stopping.is_set():
                    for event in self.api.watch("/api/v1/pods", version):
                        obj = event["object"]
                        if event["type"] == "ERROR":
                            raise ApiError(int(obj.get("code", 500)), obj.get("message", ""))
                        version = obj["metadata"]["resourceVersion"]
                        if event["type"] != "BOOKMARK":
                            self.handle(event["type"], obj)
            except (ApiError, requests.RequestException, KeyError, ValueError) as error:
                log.info("pod watch restarts: %s", error)
                self.stopping.wait(0.5)

    def _forget_missing(self, present: set[str]) -> None:
        with self.lock:
            for uid in [uid for uid in self.workers if uid not in present]:
                self.workers[uid].removed()
            for uid in [uid for uid in self.waiting if uid not in present]:
                del self.waiting[uid]
            self.finished &= present

    def handle(self, kind: str, pod: Obj) -> None:
        meta, spec = pod["metadata"], pod.get("spec", {})
        uid, node = meta["uid"], spec.get("nodeName")
        if node and node != self.config.node_name:
            return
        with self.lock:
            if kind == "DELETED":
                if uid in self.workers:
                    self.workers[uid].removed()
                self.waiting.pop(uid, None)
                self.finished.discard(uid)
                self._remove_pod_dir(uid)
                return
            if uid in self.workers:
                self.workers[uid].update(pod)
                return
            if uid in self.finished or pod.get("status", {}).get("phase") in TERMINAL:
                if node:
                    self.finished.add(uid)
                    if meta.get("deletionTimestamp"):
                        threading.Thread(target=self._drop_terminal, args=(pod,), daemon=True).start()
                return
            if node or len(self.workers) < self.max_pods:
                if not (not node and meta.get("deletionTimestamp")):
                    self._start_worker(pod)
                return
            self.waiting[uid] = pod

    def _start_worker(self, pod: Obj) -> None:
        worker = PodWorker(self.config, pod, self._worker_done)
        self.workers[worker.uid] = worker
        self.waiting.pop(worker.uid, None)
        worker.start()

    def _worker_done(self, worker: PodWorker) -> None:
        with self.lock:
            self.workers.pop(worker.uid, None)
            if not worker.gone and worker.pod["spec"].get("nodeName") is not None:
                self.finished.add(worker.uid)
            while self.waiting and len(self.workers) < self.max_pods and not self.stopping.is_set():
                uid = next(iter(self.waiting))
                self._start_worker(self.waiting.pop(uid))

    def _drop_terminal(self, pod: Obj) -> None:
        meta = pod["metadata"]
        with contextlib.suppress(ApiError, requests.RequestException):
            self.api.delete_pod_now(meta["namespace"], meta["name"], meta["uid"])

    def _remove_pod_dir(self, uid: str) -> None:
        shutil.rmtree(self.config.dirs.pods / uid, ignore_errors=True)

    def shutdown(self) -> None:
        """Stop every pod's processes (as when a node goes down; the pods stay in the API)."""
        self.stopping.set()
        with self.lock:
            workers = list(self.workers.values())
            for worker in workers:
                worker.removed()
        for worker in workers:
            worker.join(timeout=10)


def run_as_user_possible(interpreter: str) -> bool:
    """Whether another user could run our interpreter: every directory on its path must be searchable."""
    path = Path(os.path.realpath(interpreter))
    return all(os.stat(parent).st_mode & 0o001 for parent in path.parents) and bool(os.stat(path).st_mode & 0o001)


def node_capacity(state_dir: Path, max_pods: int) -> dict[str, str]:
    memory_kib = "0"
    with contextlib.suppress(OSError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kib = line.split()[1]
    return {"cpu": str(os.cpu_count() or 1), "memory": f"{memory_kib}Ki", "pods": str(max_pods),
            "ephemeral-storage": str(shutil.disk_usage(state_dir).total)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.cluster.kubelet", description=__doc__.split("\n")[0])
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--pod-path", default=os.environ.get("FERRY_POD_PATH") or os.environ.get("PATH", ""),
                        help="PATH of every container process (default: $FERRY_POD_PATH, else this process's PATH)")
    parser.add_argument("--max-pods", type=int, default=int(os.environ.get("FERRY_KUBELET_MAX_PODS", "110")))
    parser.add_argument("--run-as-user", choices=("auto", "honour", "ignore"),
                        default=os.environ.get("FERRY_KUBELET_RUN_AS_USER", "auto"),
                        help="honour runAsUser/runAsGroup; auto: only when other users can run our interpreter")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(threadName)s %(message)s")
    dirs = StateDir(args.state_dir)
    state = json.loads(dirs.state_file.read_text())
    api = Api(state["server"], state["admin_token"], Pki(dirs.pki).ca_cert)
    honour = args.run_as_user == "honour" or (args.run_as_user == "auto" and run_as_user_possible(sys.executable))
    if not honour:
        log.info("containers run as root: runAsUser/runAsGroup are not honoured (--run-as-user=%s)", args.run_as_user)
    config = NodeConfig(
        api=api, node_name=state["node_name"], host_ip=state["advertise_address"],
        api_port=int(state["server"].rsplit(":", 1)[1]), dirs=dirs, pod_path=args.pod_path,
        honour_run_as_user=honour, node_allocatable=node_capacity(args.state_dir, args.max_pods),
        passthrough_env={k: os.environ[k] for k in PASSTHROUGH if k in os.environ},
    )
    kubelet = Kubelet(config, args.max_pods)

    def stop(signum: int, frame: object) -> None:
        raise Shutdown()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        kubelet.register()
        threading.Thread(target=kubelet.heartbeat, name="heartbeat", daemon=True).start()
        kubelet.sync()
    except Shutdown:
        log.info("shutting down")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        kubelet.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
