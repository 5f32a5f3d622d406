"""Where the engine hands each finished object, and where it borrows an object's bulk from on import.

The engine writes an export as files and reads an import from files (`ferry.engine.files`). When
the export's real destination is elsewhere (a bucket: `ferry.storage.transfer`), the engine still
writes each object into a local directory, and tells the process's spool when one is complete
(a run: its ``run.json``, written last, is down); the spool may then move it away and answer
later that it `holds` it, which is how a rerun skips what an earlier, killed run finished. On
import the engine `borrows` an object's bulk (a run's artifacts) only while it imports that
object, so at most the objects in flight are on local disk.

The default spool keeps everything where the engine wrote it: a plain directory export. The
spool is process-wide, not an argument threaded through every engine call, because one process
runs one export or import (a Job, a command) and the engine's worker threads must all see it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Spool:
    """A local directory export: finished objects stay where they were written."""

    def holds(self, directory: Path) -> bool:
        """True when the object at `directory` was finished and moved away by an earlier run."""
        return False

    def finished(self, directory: Path) -> None:
        """The object at `directory` is complete (its completion file is written)."""

    @contextmanager
    def borrowed(self, directory: Path) -> Iterator[None]:
        """Make the bulk of the object at `directory` present while the block runs."""
        yield


_current: Spool = Spool()
_lock = threading.Lock()


def current() -> Spool:
    """The spool of the export or import this process runs."""
    return _current


@contextmanager
def using(spool: Spool) -> Iterator[Spool]:
    """Install `spool` for the block (one at a time per process)."""
    global _current
    with _lock:
        if type(_current) is not Spool:
            raise RuntimeError("a spool is already in use in this process")
        _current = spool
    try:
        yield spool
    finally:
        _current = Spool()
