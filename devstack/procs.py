"""Start and stop local server processes by the pid we recorded, and find free loopback ports."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def free_port() -> int:
    """Ask the kernel for a free TCP port on 127.0.0.1."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start a server in its own process group so that stopping it takes its workers too."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115 - the child owns the file for its lifetime
    try:
        return subprocess.Popen(
            list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=cwd, start_new_session=True,
        )
    finally:
        log.close()


def stop_pid(pid: int, grace: float = 10.0) -> None:
    """SIGTERM the process group led by `pid`, then SIGKILL it if it outlives `grace` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_until(check: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None,
               log_path: Path | None = None) -> None:
    """Poll `check` until it is true; fail with the tail of the server's log if it never is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.2)
    tail = ""
    if log_path is not None and log_path.exists():
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
    state = f"exited with {proc.returncode}" if proc is not None and proc.poll() is not None else "timed out"
    raise RuntimeError(f"{what} did not come up ({state}); last log lines:\n{tail}")


def serve_until_interrupted(stop: Callable[[], None]) -> None:
    """Keep a server started from the shell running until Ctrl-C, then `stop` it."""
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        stop()
