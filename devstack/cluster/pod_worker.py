"""One pod's life on the local node, in one thread: bind, volumes, init containers, containers,
restarts, deadline, deletion — and the pod status a kubelet would write at each step.

Each container is a local process (its `command` + `args`; the image is not pulled), started by
`launch.py` in a private mount namespace with the pod's volumes bind-mounted at their mount paths.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from devstack.cluster.api import Api, ApiError, Obj
from devstack.cluster.env import ContainerConfigError, container_env, expand
from devstack.cluster.paths import StateDir
from devstack.cluster.volumes import Mount, VolumeContext, VolumeNotReady, container_mounts, prepare_volumes

log = logging.getLogger("kubelet")

LAUNCHER = Path(__file__).with_name("launch.py")
# What stands for a container image here: the project (an editable install's sources) and the
# interpreters its virtualenv runs on. The launcher keeps them visible under any volume.
IMAGE_PATHS = sorted({str(Path(__file__).resolve().parents[2]), sys.prefix, sys.base_prefix})
TERMINAL = ("Succeeded", "Failed")
MAX_MESSAGE = 4096
FALLBACK_LINES, FALLBACK_BYTES = 80, 2048


@dataclass
class NodeConfig:
    """What every pod worker needs to know about the node and the cluster."""

    api: Api
    node_name: str
    host_ip: str
    api_port: int
    dirs: StateDir
    pod_path: str
    honour_run_as_user: bool
    node_allocatable: dict[str, str]
    backoff_base: float = 1.0
    backoff_cap: float = 20.0
    passthrough_env: dict[str, str] = field(default_factory=dict)


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ContainerRun:
    """One container of the pod, across its restarts."""

    spec: Obj
    init: bool
    restarts: int = 0
    proc: subprocess.Popen[bytes] | None = None
    state: Obj = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: Obj = field(default_factory=dict)
    next_start: float = 0.0
    started_at: float = 0.0
    finished: bool = False  # terminated and not going to restart

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def running(self) -> bool:
        return self.proc is not None

    def status(self, pod_uid: str) -> Obj:
        return {"name": self.name, "state": self.state, "lastState": self.last_state,
                "ready": self.running and not self.init, "restartCount": self.restarts,
                "image": self.spec.get("image", ""), "imageID": "", "started": self.running,
                "containerID": f"ferry://{pod_uid[:8]}-{self.name}-{self.restarts}"}


class PodWorker(threading.Thread):
    def __init__(self, node: NodeConfig, pod: Obj, on_exit: Callable[[PodWorker], None]) -> None:
        meta = pod["metadata"]
        super().__init__(name=f"pod-{meta['namespace']}/{meta['name']}", daemon=True)
        self.node = node
        self.pod = pod
        self.uid: str = meta["uid"]
        self.on_exit = on_exit
        self.wake = threading.Event()
        self.gone = False
        self.stopping = False  # processes are being stopped for good: no restarts
        self.phase = "Pending"
        self.pod_dir = node.dirs.pods / self.uid
        self.log_dir = node.dirs.container_logs / meta["namespace"] / meta["name"] / self.uid
        spec = pod["spec"]
        self.init_runs = [ContainerRun(c, init=True) for c in spec.get("initContainers", [])]
        self.runs = [ContainerRun(c, init=False) for c in spec.get("containers", [])]
        self.volume_paths: dict[str, Path] = {}
        self.start_time: float | None = None
        self.start_stamp = ""
        self.reason = ""
        self.message = ""
        self.transitions: dict[str, tuple[str, str]] = {}
        self.last_status: Obj = {}

    # -- events from the kubelet's watch ---------------------------------------------------------
    def update(self, pod: Obj) -> None:
        self.pod = pod
        self.wake.set()

    def removed(self) -> None:
        self.gone = True
        self.wake.set()

    @property
    def deleting(self) -> bool:
        return self.gone or bool(self.pod["metadata"].get("deletionTimestamp"))

    @property
    def path(self) -> str:
        meta = self.pod["metadata"]
        return f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"

    @property
    def restart_policy(self) -> str:
        return str(self.pod["spec"].get("restartPolicy", "Always"))

    # -- the life ----------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self._live()
        except Exception:
            log.exception("pod %s failed in the kubelet", self.name)
            self._kill_all(grace=0)
        finally:
            shutil.rmtree(self.pod_dir, ignore_errors=True)
            self.on_exit(self)

    def _live(self) -> None:
        if not self.pod["spec"].get("nodeName") and not self._bind():
            return
        self.start_time = time.monotonic()
        self.start_stamp = self.pod.get("status", {}).get("startTime") or now_rfc3339()
        self.pod_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._write_status()
        if self._prepare_volumes() and self._run_init_containers():
            self._run_containers()
        if self.deleting:
            self._finish_deletion()
        else:
            self._write_status()
        log.info("pod %s done: %s", self.name, "deleted" if self.deleting else self.phase)

    def _bind(self) -> bool:
        meta = self.pod["metadata"]
        body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": meta["name"], "uid": self.uid},
                "target": {"apiVersion": "v1", "kind": "Node", "name": self.node.node_name}}
        try:
            self.node.api.post(f"{self.path}/binding", body)
        except ApiError as error:
            log.info("could not bind %s: %s", self.name, error)
            return False
        return True

    def _wait(self, seconds: float) -> None:
        self.wake.wait(max(seconds, 0.0))
        self.wake.clear()

    def _deadline_left(self) -> float | None:
        limit = self.pod["spec"].get("activeDeadlineSeconds")
        if limit is None or self.start_time is None:
            return None
        return self.start_time + float(limit) - time.monotonic()

    def _over_deadline(self) -> bool:
        left = self._deadline_left()
        if left is None or left > 0:
            return False
        self._kill_all(grace=self._grace())
        self._fail("DeadlineExceeded", "Pod was active on the node longer than the specified deadline")
        return True

    def _fail(self, reason: str, message: str) -> None:
        self.phase, self.reason, self.message = "Failed", reason, message
        for run in [*self.init_runs, *self.runs]:
            if "waiting" in run.state:
                run.state = {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown", "message": message,
                                            "startedAt": None, "finishedAt": now_rfc3339()}}
            run.finished = True

    def _prepare_volumes(self) -> bool:
        attempt = 0
        while not self.deleting and not self._over_deadline():
            ctx = VolumeContext(self.node.api, self.pod, self.pod_dir, self.node.dirs.claim_path, self._lookup,
                                self.node.node_allocatable)
            try:
                self.volume_paths = prepare_volumes(ctx)
                return True
            except VolumeNotReady as error:
                self._set_waiting("ContainerCreating", f"MountVolume.SetUp failed: {error}")
            attempt += 1
            self._write_status()
            self._wait(min(attempt, 5))
        return False

    def _run_init_containers(self) -> bool:
        for run in self.init_runs:
            while not run.finished:
                if self.deleting or self._over_deadline():
                    return False
                if not run.running and time.monotonic() >= run.next_start and not self._start(run):
                    self._write_status()
                    self._wait(run.next_start - time.monotonic())
                    continue
                self._write_status()
                self._wait(self._next_wakeup([run]))
                self._reap(run)
                if self.phase == "Failed":
                    return False
        return True

    def _run_containers(self) -> None:
        while True:
            for run in self.runs:
                self._reap(run)
            if all(run.finished for run in self.runs):
                self._settle_phase()
                return
            if self.deleting or self._over_deadline():
                return
            for run in self.runs:
                if not run.running and not run.finished and time.monotonic() >= run.next_start:
                    self._start(run)
            self._settle_phase()
            self._write_status()
            self._wait(self._next_wakeup(self.runs))

    def _next_wakeup(self, runs: list[ContainerRun]) -> float:
        waits = [run.next_start - time.monotonic() for run in runs if not run.running and not run.finished]
        left = self._deadline_left()
        if left is not None:
            waits.append(left)
        return max(min(waits, default=60.0), 0.05)

    def _settle_phase(self) -> None:
        if self.phase == "Failed":
            return
        if all(run.finished for run in self.runs):
            codes = [run.state.get("terminated", {}).get("exitCode", 1) for run in self.runs]
            self.phase = "Succeeded" if all(code == 0 for code in codes) else "Failed"
        elif any(run.running or run.restarts or "terminated" in run.last_state for run in self.runs):
            self.phase = "Running"

    # -- containers --------------------------------------------------------------------------------
    def _set_waiting(self, reason: str, message: str, runs: list[ContainerRun] | None = None) -> None:
        for run in runs if runs is not None else [*self.init_runs, *self.runs]:
            if not run.running and not run.finished:
                run.state = {"waiting": {"reason": reason, "message": message}}

    def _start(self, run: ContainerRun) -> bool:
        """Start the container's process; on a configuration error leave it waiting and retry later."""
        try:
            plan = self._plan(run)
        except ContainerConfigError as error:
            run.state = {"waiting": {"reason": "CreateContainerConfigError", "message": str(error)}}
            run.next_start = time.monotonic() + 2.0
            return False
        plan_path = self.pod_dir / f"{run.name}.plan.json"
        plan_path.write_text(json.dumps(plan))
        Path(plan["start_error"]).unlink(missing_ok=True)
        with open(self.log_dir / f"{run.name}.log", "ab") as logfile:
            run.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(LAUNCHER), str(plan_path)],
                stdin=subprocess.DEVNULL, stdout=logfile, stderr=subprocess.STDOUT,
                start_new_session=True, env={}, close_fds=True,
            )
        (self.pod_dir / f"{run.name}.pid").write_text(str(run.proc.pid))
        log.info("pod %s container %s started (pid %d, restart %d)", self.name, run.name, run.proc.pid, run.restarts)
        run.started_at = time.monotonic()
        run.state = {"running": {"startedAt": now_rfc3339()}}
        threading.Thread(target=self._await_exit, args=(run.proc,), daemon=True,
                         name=f"wait-{self.name}-{run.name}").start()
        return True

    def _await_exit(self, proc: subprocess.Popen[bytes]) -> None:
        proc.wait()
        self.wake.set()

    def _plan(self, run: ContainerRun) -> Obj:
        spec = run.spec
        env = container_env(self.pod, spec, self._base_env(spec), self._lookup, self.node.node_allocatable)
        argv = [expand(arg, env) for arg in [*spec.get("command", []), *spec.get("args", [])]]
        if not spec.get("command"):
            raise ContainerConfigError("the local kubelet cannot run an image's entrypoint: set `command`")
        message_file = self.pod_dir / "termination" / run.name
        message_file.parent.mkdir(exist_ok=True)
        message_file.write_bytes(b"")
        message_file.chmod(0o666)
        mounts = container_mounts(spec, self.volume_paths)
        mounts.append(Mount(str(message_file), spec.get("terminationMessagePath", "/dev/termination-log"), False))
        uid, gid, groups = self._identity(spec)
        return {"argv": argv, "env": env, "cwd": spec.get("workingDir") or "/",
                "mounts": [[m.source, m.target, m.read_only] for m in mounts],
                "uid": uid, "gid": gid, "groups": groups, "image": IMAGE_PATHS,
                "start_error": str(self.pod_dir / f"{run.name}.start-error")}

    def _identity(self, spec: Obj) -> tuple[int | None, int | None, list[int]]:
        """runAsUser/runAsGroup/fsGroup, when this machine lets other users run the interpreter."""
        if not self.node.honour_run_as_user:
            return None, None, []
        pod_ctx = self.pod["spec"].get("securityContext", {})
        ctx = {**pod_ctx, **spec.get("securityContext", {})}
        uid, gid = ctx.get("runAsUser"), ctx.get("runAsGroup")
        if uid is None:
            return None, None, []
        groups = [g for g in [pod_ctx.get("fsGroup"), *pod_ctx.get("supplementalGroups", [])] if g is not None]
        return uid, gid if gid is not None else 0, groups

    def _base_env(self, spec: Obj) -> dict[str, str]:
        port = str(self.node.api_port)
        ctx = {**self.pod["spec"].get("securityContext", {}), **spec.get("securityContext", {})}
        as_root = not self.node.honour_run_as_user or not ctx.get("runAsUser")
        return {**self.node.passthrough_env,
                "PATH": self.node.pod_path, "HOME": "/root" if as_root else "/",
                "HOSTNAME": self.pod["metadata"]["name"],
                "KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": port,
                "KUBERNETES_SERVICE_PORT_HTTPS": port, "KUBERNETES_PORT": f"tcp://127.0.0.1:{port}",
                f"KUBERNETES_PORT_{port}_TCP": f"tcp://127.0.0.1:{port}"}

    def _lookup(self, kind: str, name: str) -> Obj | None:
        return self.node.api.get(f"/api/v1/namespaces/{self.pod['metadata']['namespace']}/{kind}/{name}")

    def _reap(self, run: ContainerRun) -> None:
        """Record a finished process: exit code, reason, termination message; plan the restart."""
        if run.proc is None or run.proc.poll() is None:
            return
        code = run.proc.returncode
        code = 128 - code if code < 0 else code
        (self.pod_dir / f"{run.name}.pid").unlink(missing_ok=True)
        start_error = self.pod_dir / f"{run.name}.start-error"
        reason, message = ("Completed" if code == 0 else "Error"), self._termination_message(run, code)
        if start_error.exists():
            reason, message = "StartError", start_error.read_text()
        log.info("pod %s container %s exited with %d (%s)", self.name, run.name, code, reason)
        started = run.state.get("running", {}).get("startedAt")
        terminated = {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": now_rfc3339(),
                      "containerID": run.status(self.uid)["containerID"]}
        if message:
            terminated["message"] = message
        run.proc = None
        restart = self.restart_policy == "Always" or (self.restart_policy == "OnFailure" and code != 0)
        if run.init and code == 0:
            restart = False
        if run.init and code != 0 and self.restart_policy == "Never":
            run.state, run.finished = {"terminated": terminated}, True
            self.phase = "Failed"
            return
        if not restart or self.deleting or self.stopping:
            run.state, run.finished = {"terminated": terminated}, True
            return
        ran_for = time.monotonic() - run.started_at
        exponent = 0 if ran_for > 60 else min(run.restarts, 10)
        delay = min(self.node.backoff_base * 2**exponent, self.node.backoff_cap)
        run.last_state = {"terminated": terminated}
        run.restarts += 1
        run.next_start = time.monotonic() + delay
        run.state = {"waiting": {"reason": "CrashLoopBackOff",
                                 "message": f"back-off {delay:g}s restarting failed container={run.name}"}}

    def _termination_message(self, run: ContainerRun, code: int) -> str:
        path = self.pod_dir / "termination" / run.name
        with contextlib.suppress(OSError):
            message = path.read_bytes()[:MAX_MESSAGE].decode(errors="replace")
            if message:
                return message
        if code != 0 and run.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            with contextlib.suppress(OSError):
                lines = (self.log_dir / f"{run.name}.log").read_bytes().splitlines()[-FALLBACK_LINES:]
                return b"\n".join(lines)[-FALLBACK_BYTES:].decode(errors="replace")
        return ""

    def _grace(self) -> float:
        meta = self.pod["metadata"]
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = self.pod["spec"].get("terminationGracePeriodSeconds", 30)
        return float(grace)

    def _kill_all(self, grace: float) -> None:
        """SIGTERM every process group of the pod, SIGKILL what outlives the grace period."""
        self.stopping = True
        procs = [(run, run.proc) for run in [*self.init_runs, *self.runs] if run.proc is not None]
        for _, proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for _, proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(deadline - time.monotonic(), 0))
        for _, proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for run, proc in procs:
            proc.wait()
            self._reap(run)

    def _finish_deletion(self) -> None:
        """Stop the processes, report them terminated, then let the API server drop the pod."""
        self._kill_all(grace=self._grace() if not self.gone else 2.0)
        if self.gone:
            return
        self._settle_phase()
        self._write_status()
        meta = self.pod["metadata"]
        with contextlib.suppress(ApiError):
            self.node.api.delete_pod_now(meta["namespace"], meta["name"], meta["uid"])

    # -- status ------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        meta = self.pod["metadata"]
        return f"{meta['namespace']}/{meta['name']}"

    def _condition(self, kind: str, status: bool, reason: str = "") -> Obj:
        value = "True" if status else "False"
        previous = self.transitions.get(kind)
        if previous is None or previous[0] != value:
            self.transitions[kind] = (value, now_rfc3339())
        condition = {"type": kind, "status": value, "lastProbeTime": None,
                     "lastTransitionTime": self.transitions[kind][1]}
        if reason and not status:
            condition["reason"] = reason
        return condition

    def _status(self) -> Obj:
        initialized = all(run.finished and run.state.get("terminated", {}).get("exitCode") == 0
                          for run in self.init_runs)
        ready = all(run.running for run in self.runs) and self.phase == "Running"
        not_ready = "PodCompleted" if self.phase in TERMINAL else "ContainersNotReady"
        status: Obj = {
            "phase": self.phase, "hostIP": self.node.host_ip, "podIP": self.node.host_ip,
            "podIPs": [{"ip": self.node.host_ip}], "startTime": self.start_stamp,
            "conditions": [
                self._condition("Initialized", initialized, "ContainersNotInitialized"),
                self._condition("Ready", ready, not_ready),
                self._condition("ContainersReady", ready, not_ready),
                self._condition("PodScheduled", True),
            ],
            "containerStatuses": [run.status(self.uid) for run in self.runs],
            "reason": self.reason or None, "message": self.message or None,
        }
        if self.init_runs:
            status["initContainerStatuses"] = [run.status(self.uid) for run in self.init_runs]
        return status

    def _write_status(self) -> None:
        status = self._status()
        if status == self.last_status:
            return
        try:
            if self.node.api.merge_patch(f"{self.path}/status", {"status": status}) is None:
                self.removed()
        except ApiError as error:
            log.warning("status of %s not written: %s", self.name, error)
            return
        self.last_status = status
