"""How one run of kopf ends, and what the operator's exit code says about it.

The operator proper runs kopf once (`run_once`) as the child of `ferry.supervisor`. When kopf stops,
it is given `STOP_SECONDS` to stop its tasks on its own (a watch caught between its retries may
never stop), then the reason is one line and the exit code: 0 after a signal, `EXIT_WATCHES_LOST`
when the API server ended the watches or the operator asked to watch anew (`request_restart`: a
CRD installed after it started), and the supervisor starts it again; 1 for anything else.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import aiohttp
import kopf

from ferry.supervisor import EXIT_WATCHES_LOST

log = logging.getLogger("ferry.controller")

STOP_SECONDS = 15.0
_restart = threading.Event()  # kopf's stop flag; set from any thread


def request_restart(reason: str) -> None:
    """Stop kopf, and have the supervisor start the operator again at once, saying `reason`."""
    log.info("starting the watches again: %s", reason)
    _restart.set()


def lost_the_api_server(err: BaseException) -> bool:
    """Whether kopf ended on an answer (or a silence) of the API server, not on a fault of its own.

    kopf raises its API errors from the aiohttp error of the response, so the chain is looked at.
    """
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, aiohttp.ClientError | ConnectionError | TimeoutError):
            return True
        seen = seen.__cause__
    return False


def run_once(**kopf_options: Any) -> int:
    """Run kopf until it stops; the exit code says why: 0 (a signal), `EXIT_WATCHES_LOST`, or 1.

    The caller exits with ``os._exit``: tasks kopf could not stop must not hold the process.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    code = loop.run_until_complete(_watch_once(**kopf_options))
    logging.shutdown()
    return code


async def _watch_once(**kopf_options: Any) -> int:
    existing = asyncio.all_tasks()
    root = await kopf.spawn_tasks(stop_flag=_restart, **kopf_options)
    stopping = asyncio.create_task(kopf.run_tasks(root, ignored=existing))
    await asyncio.wait(root, return_when=asyncio.FIRST_COMPLETED)
    await asyncio.wait({stopping}, timeout=STOP_SECONDS)
    failures = [t.exception() for t in root if t.done() and not t.cancelled() and t.exception() is not None]
    if not failures:
        return EXIT_WATCHES_LOST if _restart.is_set() else 0
    failure = failures[0]
    if lost_the_api_server(failure):
        log.error("the API server stopped serving the operator's watches (%s: %s); starting them again",
                  type(failure).__name__, failure)
        return EXIT_WATCHES_LOST
    log.error("the operator stopped: %s: %s", type(failure).__name__, failure)
    return 1
