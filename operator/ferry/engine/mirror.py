"""A standby tracking server kept in step with a primary: one incremental sync, server to server.

(Interface; the implementation follows.)
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ferry.options import MirrorObjects, MirrorOptions, Renames
from ferry.outcome import Outcome
from ferry.progress import ProgressSink
from ferry.tracking import TrackingClient


def mirror(src: TrackingClient, dst: TrackingClient, objects: MirrorObjects | None = None,
           options: MirrorOptions | None = None, renames: Renames | None = None, *, since: int | None = None,
           last_full_compare: int | None = None, workers: int = 4, on_progress: ProgressSink | None = None,
           clock: Callable[[], float] = time.time) -> Outcome:
    """One sync of `objects` from `src` to `dst`: what changed since `since` (ms), or everything.

    Returns the sync's outcome with `watermark` (the `since` of the next sync), `lag_seconds`
    and, when this sync compared everything, `full_compare_time`.
    """
    raise NotImplementedError
