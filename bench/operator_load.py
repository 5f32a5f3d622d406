"""The operator under a burst: N resources applied at once on the real control plane.

Measures, per resource, the time from its creation (the API server's answer to the create) to
the moment its Job appears in a watch, and the operator's peak RSS over the burst. The local
kubelet is started with room for no pods, so the Jobs' pods stay Pending: what is measured is
the operator's reaction, not 200 engine processes fighting it for the same two cores.

    python -m bench --only operator
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import yaml

from bench.stage import environ
from bench.tools import REPO
from devstack.procs import spawn, stop_pid
from ferry.api import BY_KIND, GROUP, VERSION

PLURAL = BY_KIND["MlflowExport"].plural
NAMESPACE = "ferry-bench"
CLAIM = "backups"


@dataclass
class OperatorResult:
    resources: int
    latencies: list[float]           # seconds, one per resource whose Job appeared
    peak_rss_mb: float
    missing: int                     # resources without a Job when the wait ended
    create_seconds: float            # from the first create sent to the last one answered

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

    def summary(self) -> str:
        if not self.latencies:
            return f"{self.resources} resources: no Job appeared"
        return (f"{self.resources} resources: Job after p50 {statistics.median(self.latencies):.2f} s, "
                f"p95 {self.percentile(0.95):.2f} s, max {max(self.latencies):.2f} s; "
                f"{self.missing} without a Job; creating them took {self.create_seconds:.2f} s; "
                f"operator peak RSS {self.peak_rss_mb:.0f} MB")


def _export(name: str) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "MlflowExport", "metadata": {"name": name},
            "spec": {"source": {"trackingUri": "http://127.0.0.1:9"}, "objects": {"experiments": ["bench"]},
                     "destination": {"pvc": {"claimName": CLAIM, "subPath": name}}}}


class _JobWatch:
    """Records when each owner's first Job is seen, from a watch that starts before the burst."""

    def __init__(self, api: Any) -> None:
        from kubernetes import client, watch

        self.batch = client.BatchV1Api(api)
        self.watch = watch.Watch()
        self.seen: dict[str, float] = {}
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> _JobWatch:
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            for event in self.watch.stream(self.batch.list_namespaced_job, NAMESPACE, timeout_seconds=600):
                now = time.monotonic()
                for owner in event["object"].metadata.owner_references or []:
                    with self.lock:
                        self.seen.setdefault(owner.name, now)
        except Exception:  # the stream ends when the cluster stops under it; what was seen stays
            return

    def stop(self) -> None:
        self.watch.stop()


def _wait(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def _prepare(api: Any) -> None:
    """CRDs, the namespace, the Jobs' ServiceAccount and the claim the exports write to."""
    from kubernetes import client

    ext = client.ApiextensionsV1Api(api)
    for path in sorted((REPO / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        ext.create_custom_resource_definition(crd)
    names = [yaml.safe_load(p.read_text())["metadata"]["name"] for p in sorted((REPO / "crds").glob("*.yaml"))]
    _wait(lambda: all(any(c.type == "Established" and c.status == "True"
                          for c in ext.read_custom_resource_definition(n).status.conditions or [])
                      for n in names), 60)
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": NAMESPACE}})
    core.create_namespaced_service_account(NAMESPACE, {"metadata": {"name": "ferry-job"}})
    core.create_namespaced_persistent_volume_claim(NAMESPACE, {
        "metadata": {"name": CLAIM},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    })


def _peak_rss(pid: int, stop: threading.Event, out: list[float]) -> None:
    while not stop.is_set():
        try:
            procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
            out.append(sum(p.memory_info().rss for p in procs) / 2**20)
        except psutil.NoSuchProcess:
            return
        stop.wait(0.2)


def run(work: Path, resources: int = 200, timeout: float = 300.0, say: Callable[[str], None] = print) -> OperatorResult:
    from kubernetes import client, config

    from devstack.cluster import Cluster

    with environ(FERRY_KUBELET_MAX_PODS="0"):
        cluster = Cluster(work / "k8s").up()
    operator = None
    try:
        api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        _prepare(api)
        custom = client.CustomObjectsApi(api)
        env = {"KUBECONFIG": str(cluster.kubeconfig), "FERRY_JOB_IMAGE": "mlflow-ferry:bench"}
        with environ(**env):
            operator = spawn([str(Path(sys.executable).with_name("ferry")), "operator", "--namespace", NAMESPACE],
                             work / "operator.log")
        watch = _JobWatch(api).start()
        # A first resource proves the operator is up and warms it; the burst starts after its Job.
        custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, _export("warmup"))
        if not _wait(lambda: "warmup" in watch.seen, 120):
            raise RuntimeError(f"the operator made no Job for the first resource; see {work / 'operator.log'}")
        stop, rss = threading.Event(), []
        sampler = threading.Thread(target=_peak_rss, args=(operator.pid, stop, rss), daemon=True)
        sampler.start()
        created: dict[str, float] = {}

        def create(i: int) -> None:
            name = f"burst-{i:04d}"
            custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, _export(name))
            created[name] = time.monotonic()

        say(f"  operator: creating {resources} MlflowExports at once")
        began = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(create, range(resources)))
        create_seconds = time.monotonic() - began
        _wait(lambda: all(name in watch.seen for name in created), timeout)
        stop.set()
        sampler.join()
        watch.stop()
        latencies = [watch.seen[n] - t for n, t in created.items() if n in watch.seen]
        result = OperatorResult(resources, latencies, max(rss, default=0.0), resources - len(latencies),
                                create_seconds)
        say(f"  operator: {result.summary()}")
        return result
    finally:
        if operator is not None:
            stop_pid(operator.pid)
        cluster.down()
