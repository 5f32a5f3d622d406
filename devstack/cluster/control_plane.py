"""Start and stop one local cluster: etcd, kube-apiserver, kube-controller-manager, local kubelet.

Every process is started in its own process group, its pid recorded in `cluster.json` in the
state directory; `down` stops each by that pid and the kubelet stops its pods' processes.
Everything listens on 127.0.0.1 on free ports, so clusters of concurrent test sessions do not
meet.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from devstack.cluster.api import Api, readyz
from devstack.cluster.kubeconfig import serviceaccount_token, write_kubeconfig
from devstack.cluster.paths import NODE_NAME, StateDir, bin_dir, default_state_dir
from devstack.cluster.pki import Pki
from devstack.procs import free_port, spawn, stop_pid, wait_until

SERVICE_CIDR = "10.0.0.0/24"
FEATURE_GATES = "TTLAfterFinished=true"
ADMISSION_PLUGINS = ("NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultStorageClass,"
                     "DefaultTolerationSeconds,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,"
                     "ResourceQuota,Priority")
CONTROLLERS = ("job,garbagecollector,namespace,serviceaccount,serviceaccount-token,deployment,replicaset,"
               "ttl-after-finished,root-ca-cert-publisher,podgc,clusterrole-aggregation")
PROCESS_ORDER = ("etcd", "apiserver", "controller_manager", "kubelet")


class BuildMissing(RuntimeError):
    """The control-plane binaries are not there: run hack/build-control-plane.sh."""


@dataclass
class ClusterState:
    """What `up` recorded: enough for `down`, `env`, `status` and the test fixtures."""

    server: str
    admin_token: str
    advertise_address: str
    node_name: str
    pids: dict[str, int] = field(default_factory=dict)


@dataclass
class Cluster:
    """One local cluster living in `state_dir`."""

    state_dir: Path = field(default_factory=default_state_dir)
    pod_path: str | None = None
    state: ClusterState | None = None

    def __post_init__(self) -> None:
        self.dirs = StateDir(self.state_dir)
        self.pki = Pki(self.dirs.pki)
        if self.state is None and self.dirs.state_file.exists():
            self.state = ClusterState(**json.loads(self.dirs.state_file.read_text()))

    # -- facts -----------------------------------------------------------------------------------
    @property
    def server(self) -> str:
        return self._state.server

    @property
    def kubeconfig(self) -> Path:
        return self.dirs.admin_kubeconfig

    @property
    def _state(self) -> ClusterState:
        if self.state is None:
            raise RuntimeError(f"no cluster recorded in {self.state_dir}; run `python -m devstack.cluster up`")
        return self.state

    def admin_api(self) -> Api:
        return Api(self.server, self._state.admin_token, self.pki.ca_cert)

    def env(self) -> dict[str, str]:
        """Environment that points kubectl and clients at this cluster."""
        return {"KUBECONFIG": str(self.kubeconfig), "FERRY_CLUSTER_DIR": str(self.state_dir),
                "PATH": f"{bin_dir()}{os.pathsep}{os.environ.get('PATH', '')}"}

    def claim_path(self, namespace: str, claim: str) -> Path:
        return self.dirs.claim_path(namespace, claim)

    def serviceaccount_kubeconfig(self, namespace: str, name: str, timeout: float = 60.0) -> Path:
        """A kubeconfig authenticating as ServiceAccount `namespace/name` (which must exist or be coming)."""
        token = serviceaccount_token(self.admin_api(), namespace, name, timeout)
        path = self.dirs.kubeconfigs / f"{namespace}.{name}.kubeconfig"
        return write_kubeconfig(path, self.server, self.pki.ca_cert, f"system:serviceaccount:{namespace}:{name}",
                                token, namespace)

    def alive(self) -> dict[str, bool]:
        pids = self.state.pids if self.state else {}
        return {name: _pid_alive(pids[name]) if name in pids else False for name in PROCESS_ORDER}

    def is_up(self) -> bool:
        return (self.state is not None and all(self.alive().values())
                and readyz(self.server, self.state.admin_token, self.pki.ca_cert))

    # -- lifecycle -------------------------------------------------------------------------------
    def up(self, timeout: float = 90.0) -> Cluster:
        """Start every process (reusing a cluster that is already up in this state directory)."""
        if self.is_up():
            return self
        self.down()
        for name in ("kube-apiserver", "kube-controller-manager"):
            if not (bin_dir() / name).exists():
                raise BuildMissing(f"{bin_dir() / name} is missing: run hack/build-control-plane.sh")
        etcd = shutil.which("etcd")
        if etcd is None:
            raise BuildMissing("etcd is missing: run hack/build-control-plane.sh (installs etcd-server)")
        self.dirs.root.mkdir(parents=True, exist_ok=True)
        address = advertise_address()
        self.pki.ensure([address])
        port = free_port()
        self.state = ClusterState(server=f"https://127.0.0.1:{port}", admin_token=secrets.token_hex(24),
                                  advertise_address=address, node_name=NODE_NAME)
        tokens = self.dirs.pki / "tokens.csv"
        cm_token = secrets.token_hex(24)
        tokens.write_text(f'{self.state.admin_token},admin,admin,"system:masters"\n'
                          f"{cm_token},system:kube-controller-manager,kcm\n")
        tokens.chmod(0o600)
        write_kubeconfig(self.kubeconfig, self.server, self.pki.ca_cert, "admin", self.state.admin_token)
        cm_config = write_kubeconfig(self.dirs.root / "controller-manager.kubeconfig", self.server,
                                     self.pki.ca_cert, "system:kube-controller-manager", cm_token)
        try:
            etcd_url = self._start_etcd(etcd)
            self._start_apiserver(port, etcd_url, tokens, timeout)
            self._start_controller_manager(cm_config)
            self._start_kubelet(timeout)
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        """Stop every recorded process (kubelet first, so it can stop its pods) and any pod left over."""
        pids = self.state.pids if self.state else {}
        if "kubelet" in pids:
            stop_pid(pids["kubelet"], grace=15.0)
        _stop_together([pids[name] for name in PROCESS_ORDER if name in pids and name != "kubelet"])
        for pid_file in self.dirs.pods.glob("*/*.pid") if self.dirs.pods.exists() else ():
            with contextlib.suppress(ValueError, OSError):
                stop_pid(int(pid_file.read_text()), grace=2.0)
            pid_file.unlink(missing_ok=True)
        if self.state is not None:
            self.state.pids = {}
            self._save()

    def restart_apiserver(self, timeout: float = 90.0, kill: bool = True) -> None:
        """Stop the kube-apiserver alone (SIGKILL, or SIGTERM with `kill` False) and start it again on
        the same port with the same arguments; etcd, the controller manager and the kubelet stay.

        What a control-plane upgrade or a crashed apiserver looks like to clients: watches break,
        requests are refused for a few seconds, then the same server answers with the same data.
        """
        pid = self._state.pids.get("apiserver")
        if pid is None or not _pid_alive(pid):
            raise RuntimeError(f"no kube-apiserver running in {self.state_dir}")
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").decode().split("\0")
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        stop_pid(pid, grace=10.0)
        proc = spawn(argv, self._log("kube-apiserver"))
        self._record("apiserver", proc)
        wait_until(lambda: readyz(self.server, self._state.admin_token, self.pki.ca_cert), timeout,
                   "kube-apiserver (restarted)", proc, self._log("kube-apiserver"))

    def _save(self) -> None:
        self.dirs.state_file.write_text(json.dumps(asdict(self._state), indent=2))

    def _record(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        self._state.pids[name] = proc.pid
        self._save()

    def _log(self, name: str) -> Path:
        return self.dirs.logs / f"{name}.log"

    def _start_etcd(self, etcd: str) -> str:
        client, peer = free_port(), free_port()
        url = f"http://127.0.0.1:{client}"
        shutil.rmtree(self.dirs.etcd_data, ignore_errors=True)
        argv = [etcd, "--name", "ferry", "--data-dir", str(self.dirs.etcd_data),
                "--listen-client-urls", url, "--advertise-client-urls", url,
                "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-cluster", f"ferry=http://127.0.0.1:{peer}",
                "--log-level", "warn", "--logger", "zap"]
        proc = spawn(argv, self._log("etcd"))
        self._record("etcd", proc)
        return url

    def _start_apiserver(self, port: int, etcd_url: str, tokens: Path, timeout: float) -> None:
        pki = self.pki
        argv = [str(bin_dir() / "kube-apiserver"),
                "--etcd-servers", etcd_url, "--bind-address", "127.0.0.1", "--secure-port", str(port),
                "--insecure-port", "0", "--advertise-address", self._state.advertise_address,
                "--tls-cert-file", str(pki.serving_cert), "--tls-private-key-file", str(pki.serving_key),
                "--client-ca-file", str(pki.ca_cert), "--token-auth-file", str(tokens),
                "--authorization-mode", "Node,RBAC", "--allow-privileged=true",
                "--service-account-key-file", str(pki.sa_pub),
                "--service-account-signing-key-file", str(pki.sa_key),
                "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
                "--api-audiences", "https://kubernetes.default.svc.cluster.local",
                "--service-cluster-ip-range", SERVICE_CIDR,
                "--enable-admission-plugins", ADMISSION_PLUGINS, "--feature-gates", FEATURE_GATES,
                "--cert-dir", str(self.dirs.pki / "generated"), "--profiling=false", "--v=1"]
        proc = spawn(argv, self._log("kube-apiserver"))
        self._record("apiserver", proc)
        wait_until(lambda: readyz(self.server, self._state.admin_token, pki.ca_cert), timeout,
                   "kube-apiserver", proc, self._log("kube-apiserver"))

    def _start_controller_manager(self, kubeconfig: Path) -> None:
        argv = [str(bin_dir() / "kube-controller-manager"),
                "--kubeconfig", str(kubeconfig), "--controllers", CONTROLLERS,
                "--use-service-account-credentials=true", "--leader-elect=false",
                "--service-account-private-key-file", str(self.pki.sa_key),
                "--root-ca-file", str(self.pki.ca_cert), "--feature-gates", FEATURE_GATES,
                "--port", "0", "--secure-port", "0", "--kube-api-qps", "100", "--kube-api-burst", "200",
                "--concurrent-gc-syncs", "20", "--profiling=false", "--v=1"]
        self._record("controller_manager", spawn(argv, self._log("kube-controller-manager")))

    def _start_kubelet(self, timeout: float) -> None:
        venv_bin = str(Path(sys.executable).parent)
        path = os.environ.get("PATH", "")
        env = {**os.environ, "PATH": venv_bin + os.pathsep + path if venv_bin not in path.split(os.pathsep) else path}
        argv = [sys.executable, "-m", "devstack.cluster.kubelet", "--state-dir", str(self.state_dir)]
        if self.pod_path:
            argv += ["--pod-path", self.pod_path]
        repo_root = Path(__file__).resolve().parents[2]
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo_root), env.get("PYTHONPATH")]))
        proc = spawn(argv, self._log("kubelet"), env=env)
        self._record("kubelet", proc)
        api = self.admin_api()

        def node_ready() -> bool:
            node = api.get(f"/api/v1/nodes/{self._state.node_name}")
            conditions = (node or {}).get("status", {}).get("conditions", [])
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

        wait_until(node_ready, timeout, "local kubelet", proc, self._log("kubelet"))


def advertise_address() -> str:
    """The first global IPv4 address of this machine: the `kubernetes` Service's endpoint.

    The API server refuses loopback here, yet only listens on 127.0.0.1 (pods reach it there).
    """
    with contextlib.suppress(OSError, subprocess.SubprocessError, ValueError):
        out = subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True, check=True).stdout
        for link in json.loads(out):
            for addr in link.get("addr_info", []):
                if addr.get("scope") == "global":
                    return str(addr["local"])
    raise RuntimeError("this machine has no global IPv4 address for --advertise-address; add one, e.g. "
                       "`ip link add ferry0 type dummy && ip addr add 10.254.0.1/32 dev ferry0 && ip link set ferry0 up`")


def _stop_together(pids: list[int], grace: float = 10.0) -> None:
    """SIGTERM the control plane's process groups at once; SIGKILL whatever outlives `grace`.

    Stopping them one after another costs seconds each, all spent waiting for graceful shutdowns
    that nothing needs once the whole cluster goes.
    """
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)
        deadline = time.monotonic() + wait
        while any(_pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)
        if not any(_pid_alive(pid) for pid in pids):
            return


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, ValueError):
        # A zombie child of ours counts as gone.
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return True

