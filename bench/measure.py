"""Run one tool invocation and measure what it cost: wall time, peak RSS, MLflow requests, server CPU.

Peak RSS comes from the kernel's own accounting (`wait4` rusage of the tool and every descendant
it waited for), so nothing samples and nothing is missed between samples. The tool is started
through GNU time, which reports its child's rusage: Linux folds the RSS a process had when it was
forked into the child's peak, so a tool forked straight from this (much larger) harness would
never measure below the harness's own size. Requests are counted in
the MLflow servers' access logs (uvicorn writes one line per request), which counts what the
server actually served, whatever client library the tool used. Server CPU is the user+system
time the server's process tree spent while the tool ran: it tells whether a tool is bounded by
the server or by itself.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

# uvicorn's access log: `INFO:     127.0.0.1:50448 - "GET /api/2.0/mlflow/runs/get?... HTTP/1.1" 200 OK`
ACCESS_LINE = re.compile(r'"(GET|POST|PUT|PATCH|DELETE|HEAD) (\S+) HTTP/[\d.]+" (\d{3})')
IGNORED_PATHS = ("/health",)
# MLflow answers some reads to POST (runs/search, traces/batchGet): a write is any other POST, PATCH, PUT, DELETE.
READ_PATH = re.compile(r"/(search|get|batchGet|get-history|list)[^/]*$|/traces/[^/]+$")
GNU_TIME = "/usr/bin/time"  # Debian package `time`


@dataclass
class Sample:
    """One measured invocation."""

    seconds: float
    peak_rss_mb: float
    requests: int
    server_cpu_seconds: float
    returncode: int
    error: str = ""
    endpoints: dict[str, int] = field(default_factory=dict)   # "POST /api/2.0/mlflow/runs/create" -> count
    by_server: dict[str, dict[str, int]] = field(default_factory=dict)   # server role -> its endpoints

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class AccessLog:
    """The part of a server's log written after `mark()`: how many requests it served since."""

    def __init__(self, path: Path, name: str = "") -> None:
        self.path = path
        self.name = name   # the server's role on the stage ("src", "mirror-dst-0", ...)
        self.offset = 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def requests_since_mark(self) -> Counter[str]:
        """Requests per endpoint ("METHOD /path", ids and artifact paths folded into '*')."""
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            text = fh.read().decode(errors="replace")
        return Counter(f"{m.group(1)} {endpoint(m.group(2))}" for m in ACCESS_LINE.finditer(text)
                       if not m.group(2).startswith(IGNORED_PATHS))


def endpoint(path: str) -> str:
    path = path.split("?", 1)[0]
    if "/mlflow-artifacts/artifacts/" in path:
        return path.split("/mlflow-artifacts/artifacts/", 1)[0] + "/mlflow-artifacts/artifacts/*"
    return "/".join("*" if _is_id(part) else part for part in path.split("/"))


def is_write(name: str) -> bool:
    """Whether an endpoint ("POST /api/2.0/mlflow/runs/create") changes the server."""
    method, _, path = name.partition(" ")
    return method in ("POST", "PATCH", "PUT", "DELETE") and not READ_PATH.search(path)


def writes(endpoints: dict[str, int]) -> int:
    return sum(n for name, n in endpoints.items() if is_write(name))


def _is_id(part: str) -> bool:
    """A run id, logged-model id or the like: long, alphanumeric with dashes, and with digits."""
    return len(part) >= 16 and part.replace("-", "").isalnum() and any(c.isdigit() for c in part)


def tree_cpu_seconds(pid: int) -> float:
    """User+system CPU of a process and its live descendants (a server and its workers)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def run_measured(argv: Sequence[str], *, env: dict[str, str], log_path: Path, logs: Sequence[AccessLog],
                 server_pids: Sequence[int], cwd: Path | None = None, timeout: float = 3600.0) -> Sample:
    """Run `argv` to completion with output to `log_path`, and measure it."""
    for log in logs:
        log.mark()
    cpu_before = sum(tree_cpu_seconds(pid) for pid in server_pids)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    rss_path = log_path.with_name(log_path.name + ".maxrss")
    with log_path.open("wb") as out:
        began = time.perf_counter()
        proc = subprocess.Popen([GNU_TIME, "--quiet", "-f", "%M", "-o", str(rss_path), *argv], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
        status, rusage = _wait(proc, timeout)
        seconds = time.perf_counter() - began
    returncode = os.waitstatus_to_exitcode(status)
    peak_kb = _reported_kb(rss_path) or rusage.ru_maxrss
    server_cpu = sum(tree_cpu_seconds(pid) for pid in server_pids) - cpu_before
    # The log line of the last answer may land a moment after the client has read it.
    time.sleep(0.2)
    endpoints: Counter[str] = Counter()
    by_server: dict[str, dict[str, int]] = {}
    for log in logs:
        served = log.requests_since_mark()
        endpoints += served
        if log.name and served:
            by_server[log.name] = dict(served)
    return Sample(seconds=seconds, peak_rss_mb=peak_kb / 1024, requests=endpoints.total(),
                  server_cpu_seconds=max(server_cpu, 0.0), returncode=returncode,
                  error="" if returncode == 0 else _last_line(log_path), endpoints=dict(endpoints),
                  by_server=by_server)


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, os.struct_rusage]:  # type: ignore[name-defined]
    """wait4 the child, killing it after `timeout` seconds; the rusage covers its whole tree."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return status, rusage
        if time.monotonic() > deadline:
            proc.kill()
            _, status, rusage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            return status, rusage
        time.sleep(0.02)


def _reported_kb(path: Path) -> int | None:
    """GNU time's %M (peak RSS of the tool's tree, KiB); None when the tool was killed before it wrote."""
    try:
        lines = path.read_text().split()
    except OSError:
        return None
    return int(lines[-1]) if lines and lines[-1].isdigit() else None


def _last_line(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no output"
