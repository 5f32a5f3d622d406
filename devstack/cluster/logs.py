"""Container logs: what `kubectl logs` would show, read from the kubelet's log files.

The local kubelet has no API of its own, so `kubectl logs` cannot reach it; tests and the demo
read the files instead, which are kept after the pod is deleted.
"""

from __future__ import annotations

from pathlib import Path

from devstack.cluster.paths import StateDir, default_state_dir


def container_log_path(namespace: str, pod: str, container: str | None = None,
                       state_dir: Path | None = None) -> Path:
    """The log file of `container` (default: the only or first one) of the newest pod so named."""
    pod_dir = StateDir(state_dir or default_state_dir()).container_logs / namespace / pod
    instances = sorted(pod_dir.glob("*/"), key=lambda p: p.stat().st_mtime) if pod_dir.exists() else []
    if not instances:
        raise FileNotFoundError(f"no logs for pod {namespace}/{pod}")
    newest = instances[-1]
    if container is not None:
        return newest / f"{container}.log"
    files = sorted(newest.glob("*.log"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise FileNotFoundError(f"no container logs for pod {namespace}/{pod}")
    return files[0]


def read_log(namespace: str, pod: str, container: str | None = None, state_dir: Path | None = None) -> str:
    """Everything the container wrote to stdout and stderr, across its restarts."""
    return container_log_path(namespace, pod, container, state_dir).read_text(errors="replace")
