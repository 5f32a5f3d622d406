"""`ferry operator` starts the operator again when the API server ended its watches, and only then.

The operator proper runs against the real kube-apiserver in tests/e2e/test_faults.py; here the
supervising process is given real child processes with scripted exit codes, to pin the policy:
which exits are restarted, after how long, what each child is told, and that a signal still ends it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path

import aiohttp
import pytest
from kopf._cogs.clients.errors import APIError, APIForbiddenError, APINotFoundError
from kubernetes.client.exceptions import ApiException

from ferry import supervisor
from ferry.controller.kube import no_such_object
from ferry.controller.stopping import lost_the_api_server
from ferry.supervisor import EXIT_WATCHES_LOST, RESTARTS_ENV, restart_delay, supervise


def _refused(error: type[APIError], status: int, text: str) -> APIError:
    """What kopf raises for an answer it does not retry: its API error, from aiohttp's."""
    try:
        try:
            raise aiohttp.ClientResponseError(None, (), status=status, message=text)  # type: ignore[arg-type]
        except aiohttp.ClientResponseError as err:
            raise error(text, status=status, headers={}) from err
    except APIError as err:
        return err


def _child(tmp_path: Path, *codes: int) -> list[str]:
    """A child that records the restarts it was told and exits with the next of `codes`."""
    log = tmp_path / "children"
    script = (f"import os, sys, pathlib; log = pathlib.Path({str(log)!r}); "
              f"log.open('a').write(os.environ[{RESTARTS_ENV!r}] + '\\n'); "
              f"sys.exit({list(codes)!r}[len(log.read_text().split()) - 1])")
    return [sys.executable, "-c", script]


def _told(tmp_path: Path) -> list[int]:
    return [int(n) for n in (tmp_path / "children").read_text().split()]


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervisor, "FIRST_DELAY_SECONDS", 0.01)
    monkeypatch.setattr(supervisor, "MAX_DELAY_SECONDS", 0.04)
    monkeypatch.delenv(RESTARTS_ENV, raising=False)


def test_lost_watches_start_a_new_child_told_how_many_restarts_came_before(tmp_path: Path) -> None:
    assert supervise(_child(tmp_path, EXIT_WATCHES_LOST, EXIT_WATCHES_LOST, 0)) == 0
    assert _told(tmp_path) == [0, 1, 2]


def test_any_other_exit_is_the_operators(tmp_path: Path) -> None:
    assert supervise(_child(tmp_path, EXIT_WATCHES_LOST, 3, 0)) == 3
    assert _told(tmp_path) == [0, 1]


def test_the_wait_grows_and_starts_again_after_a_healthy_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert [restart_delay(n) for n in range(1, 8)] == [0.01, 0.02, 0.04, 0.04, 0.04, 0.04, 0.04]
    waits: list[float] = []
    monkeypatch.setattr(supervisor, "restart_delay", lambda failures: waits.append(failures) or 0.0)
    lost = EXIT_WATCHES_LOST
    assert supervise(_child(tmp_path, lost, lost, lost, 0)) == 0
    ticks = iter([0, 1, 2, 3, 4, 5 + supervisor.HEALTHY_SECONDS, 6, 7])  # the third child ran long
    (tmp_path / "again").mkdir()
    assert supervise(_child(tmp_path / "again", lost, lost, lost, 0), clock=lambda: next(ticks)) == 0
    assert waits == [1, 2, 3, 1, 2, 1]


def test_a_signal_during_the_wait_ends_it_without_a_new_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervisor, "FIRST_DELAY_SECONDS", 30.0)
    monkeypatch.setattr(supervisor, "MAX_DELAY_SECONDS", 30.0)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        assert supervise(_child(tmp_path, EXIT_WATCHES_LOST, 0)) == 0
    finally:
        timer.cancel()
    assert _told(tmp_path) == [0]


def test_what_counts_as_losing_the_api_server() -> None:
    assert lost_the_api_server(_refused(APINotFoundError, 404, "404 page not found"))
    assert lost_the_api_server(_refused(APIForbiddenError, 403, "forbidden"))
    assert lost_the_api_server(aiohttp.ClientConnectionError("Connector is closed."))
    assert lost_the_api_server(TimeoutError())
    assert not lost_the_api_server(ValueError("a bug"))


def test_a_kind_not_served_yet_is_not_a_deleted_object() -> None:
    """A restarted kube-apiserver answers `404 page not found` for custom resources until it has loaded
    the CRDs: the controller must not take that for a deleted resource (and drop its result)."""
    not_served = ApiException(status=404, reason="Not Found")
    not_served.body = "404 page not found\n"
    deleted = ApiException(status=404, reason="Not Found")
    deleted.body = json.dumps({"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404,
                               "message": 'mlflowexports.ferry.dev "nightly" not found'})
    assert no_such_object(deleted)
    assert not no_such_object(not_served)
