"""Progress of a piece of work, as engines report it and as sinks show it.

Engines call a `ProgressSink` with a fresh `Progress` whenever the total or the counts move; the
command line shows it as a bar on stderr when that is a terminal, the Job runner patches it into
the resource's ``status.progress``. Neither engine knows which sink it feeds.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Progress:
    total: int = 0
    done: int = 0
    failed: int = 0


ProgressSink = Callable[[Progress], None]


class Tracker:
    """Thread-safe counters that call `sink` on every change (engines use bounded concurrency)."""

    def __init__(self, sink: ProgressSink | None = None) -> None:
        self._sink = sink
        self._lock = threading.Lock()
        self._state = Progress()

    @property
    def state(self) -> Progress:
        return self._state

    def add_total(self, n: int = 1) -> None:
        self._update(total=n)

    def advance(self, n: int = 1) -> None:
        self._update(done=n)

    def fail(self, n: int = 1) -> None:
        self._update(failed=n)

    def _update(self, total: int = 0, done: int = 0, failed: int = 0) -> None:
        with self._lock:
            s = self._state
            self._state = Progress(s.total + total, s.done + done, s.failed + failed)
            state = self._state
        if self._sink is not None:
            self._sink(state)


def terminal_sink(description: str, *, quiet: bool = False) -> ProgressSink | None:
    """A tqdm bar on stderr when it is a terminal and `quiet` is off; otherwise no sink."""
    if quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    bar: Any = tqdm(desc=description, total=0, unit="obj", file=sys.stderr, leave=False)

    def show(p: Progress) -> None:
        bar.total = max(p.total, p.done + p.failed)
        bar.n = p.done + p.failed
        bar.set_postfix(failed=p.failed, refresh=False)
        bar.refresh()

    return show
