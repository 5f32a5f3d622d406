"""One sync at a time per base directory: an exclusive ``flock`` on ``<base-dir>/.kiroframe.lock``.

Two syncs sharing a base directory would both find the same interrupted push and send it twice,
write one state file in turns, and each take the other's half-written ``.partial`` folder for a
crash leftover. The lock is held for the whole sync. A second sync waits for it a bounded time
(`KiroframeSettings.lock_wait_seconds`), then fails naming the directory and the holder: waiting
a little covers a scheduled sync whose predecessor is still stopping (a ``Replace`` policy, a pod
in its grace period); waiting without end would pile syncs up behind one that hangs, so after
the wait it fails, and the next scheduled run tries again.

The kernel drops the lock when its holder dies, however it dies, so a lock file left behind
never blocks anyone; the file is therefore never removed (removing it would let two syncs lock
two different files). The holder writes its pid, host and start time into it, for the message.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from ferry.errors import FerryError
from ferry.kiroframe.records import ms_to_iso_utc

LOCK_FILE = ".kiroframe.lock"
POLL_SECONDS = 0.1


class SyncLocked(FerryError):
    """Another sync held the base directory for the whole wait."""


class SyncLock:
    """``with SyncLock(base, wait_seconds):`` the body runs alone among syncs of `base`."""

    def __init__(self, base_dir: Path, wait_seconds: float) -> None:
        self.base_dir = base_dir
        self.path = base_dir / LOCK_FILE
        self.wait_seconds = wait_seconds
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait_seconds
        holder = ""
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    holder = _holder(self.path) or holder  # read while held: it may be mid-write
                    if time.monotonic() >= deadline:
                        raise SyncLocked(
                            f"another sync is using {self.base_dir} ({holder or 'holder unknown'}); "
                            f"gave up after waiting {self.wait_seconds:g} s") from None
                    time.sleep(POLL_SECONDS)
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        now_ms = int(time.time() * 1000)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                  "since": ms_to_iso_utc(now_ms)}).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor of the open file drops the lock
            self._fd = None

    def __enter__(self) -> SyncLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def _holder(path: Path) -> str:
    """``pid 12 on host-a since …`` from the lock file, or "" while it cannot be read."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return f"pid {int(data['pid'])} on {data['host']} since {data['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return ""
