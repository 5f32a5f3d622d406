"""Send export records to Kiroframe's import API, patiently and at most once per sync.

The wire format is kiroframe-importer's (see `ImportClient.send`). What differs is what happens
when Kiroframe misbehaves: the original retries connection errors and 503 for ten seconds and
then dies; a scheduled sync has to ride out a restart of the service. So connection errors,
timeouts, 429 (after its ``Retry-After``) and 5xx are retried with jittered exponential backoff
for `retry_seconds` (minutes by default); 401/403 stop the whole push at once, because every other
record would be refused the same way; any other 4xx refuses only that record, which is counted
and listed. Before any of that, `ImportClient.check_token` asks Kiroframe once whether it takes
the token at all, so a wrong one fails in seconds rather than after the export. Records go out from a bounded pool of threads; each acknowledgement is written to the
folder's `DeliveryJournal`, so a rerun of an interrupted push sends only what is missing.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    stop_when_event_set,
    wait_random_exponential,
)

from ferry.errors import FerryError, ServerError
from ferry.kiroframe.journal import DeliveryJournal, Record
from ferry.progress import Tracker
from ferry.redirects import CrossOriginRedirect, same_origin_only
from ferry.tracking.transport import PooledAdapter

log = logging.getLogger("ferry.kiroframe")

IMPORT_PATH = "/arcee/v2/import"
IMPORT_SOURCE = "mlflow"
TOKEN_CHECK_TIMEOUT = 15.0  # the check must not hold the sync back for a whole request timeout


def source_id(tracking_url: str) -> str:
    """What Kiroframe files a tracking server's records under: md5 of its URL, 10 hex digits."""
    clean = tracking_url[:-1] if tracking_url.endswith("/") else tracking_url
    return hashlib.md5(clean.encode("utf-8")).hexdigest()[:10]


class TokenRejected(ServerError):
    def __init__(self, url: str, status: int) -> None:
        super().__init__(f"Kiroframe at {url} refused the profiling token (HTTP {status})")


class NoImportApi(ServerError):
    """The URL answers, but not with Kiroframe's import API: every record would be refused."""


class RecordRejected(FerryError):
    """Kiroframe refused this record (a 4xx other than auth): sending it again would not help."""


class Redirected(ServerError):
    """Kiroframe's URL redirected to another host: the token is not sent there (`ferry.redirects`)."""


class KiroframeUnavailable(ServerError):
    """Kiroframe kept failing or could not be reached for the whole retry budget."""


class _Transient(Exception):
    """One attempt failed in a way worth retrying; `retry_after` is the server's hint, if any."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date, or nothing: fall back to our own backoff


def _reason(response: requests.Response) -> str:
    text = " ".join(response.text.split())[:200]
    return f"HTTP {response.status_code}" + (f": {text}" if text else "")


class _WaitHonouringRetryAfter:
    """Wait what a 429's ``Retry-After`` asks (capped), else the jittered exponential backoff."""

    def __init__(self, initial: float, cap: float) -> None:
        self._backoff = wait_random_exponential(multiplier=initial, max=cap)
        self._cap = cap

    def __call__(self, state: RetryCallState) -> float:
        err = state.outcome.exception() if state.outcome else None
        if isinstance(err, _Transient) and err.retry_after is not None:
            return min(err.retry_after, self._cap)
        return float(self._backoff(state))


class ImportClient:
    """``POST {url}/arcee/v2/import`` with the profiling token; one session per thread."""

    def __init__(self, url: str, token: str, tracking_url: str, *, retry_seconds: float,
                 backoff_seconds: float, backoff_max_seconds: float, timeout: float) -> None:
        self.url = url.rstrip("/")
        self.endpoint = self.url + IMPORT_PATH
        self.source_id = source_id(tracking_url)
        self._token = token
        self._timeout = timeout
        self._retry_seconds = retry_seconds
        self._wait = _WaitHonouringRetryAfter(backoff_seconds, backoff_max_seconds)
        self._local = threading.local()
        self.stopped = threading.Event()  # set when the push must end: no more retries

    def __repr__(self) -> str:  # never show the token
        return f"ImportClient({self.endpoint!r}, source_id={self.source_id!r})"

    @property
    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = same_origin_only(requests.Session())
            session.mount("http://", PooledAdapter())
            session.mount("https://", PooledAdapter())
            session.headers.update({"Content-type": "application/json", "x-api-key": self._token})
            self._local.session = session
        return session

    def body(self, import_type: int, line: Any) -> dict[str, Any]:
        return {"import_source": IMPORT_SOURCE, "import_source_id": self.source_id,
                "import_type": import_type, "owner_id": None, "line": line}

    def check_token(self) -> bool:
        """Ask Kiroframe once whether it takes the token; raise `TokenRejected` if it does not.

        The protocol has one request, ``POST /arcee/v2/import``, and no endpoint that only checks
        a token (inventing one, e.g. a ``GET``, would test what the real service may not serve).
        So the check is that request with an empty JSON object for a body: the smallest request
        the protocol has, and one no server can store. The service authenticates ``x-api-key``
        before it reads the body (the stand-in does the same), so it answers 401/403 for a wrong
        token and 400 for a good one. Sending the first real record first was the alternative,
        but the first record Kiroframe wants is an experiment summary, known only once all that
        experiment's runs are read: a wrong token would still cost part of an export.

        Returns True when the token was accepted, False when Kiroframe could not answer now
        (connection error, timeout, 429, 5xx): that is no reason to skip the export, since the
        push rides out an outage with its retries and keeps what is left in the journal. A 404
        or 405 means the URL is not Kiroframe's (raises `NoImportApi`): every record would be
        refused. A service that validated the body first would answer 400 to a wrong token too;
        the check would then pass, and the push would stop at its first record as before.
        """
        try:
            response = self._session.post(self.endpoint, json={},
                                          timeout=min(self._timeout, TOKEN_CHECK_TIMEOUT))
        except CrossOriginRedirect as err:
            raise Redirected(f"Kiroframe at {self.url}: {err}") from None
        except requests.RequestException as err:
            log.warning("Could not check the token with Kiroframe at %s (%s); the push will retry",
                        self.url, type(err).__name__)
            return False
        status = response.status_code
        if status in (401, 403):
            raise TokenRejected(self.url, status)
        if status in (404, 405):
            raise NoImportApi(f"Kiroframe at {self.url} has no import API ({_reason(response)} "
                              f"for POST {IMPORT_PATH}): check the Kiroframe URL")
        if status == 429 or status >= 500:
            log.warning("Could not check the token with Kiroframe at %s (%s); the push will retry",
                        self.url, _reason(response))
            return False
        log.info("Kiroframe at %s accepts the profiling token", self.url)
        return True

    def send(self, import_type: int, line: Any) -> None:
        """Deliver one record, retrying transient failures; raise why it was not delivered."""
        retrying = Retrying(
            retry=retry_if_exception_type(_Transient),
            stop=stop_after_delay(self._retry_seconds) | stop_when_event_set(self.stopped),
            wait=self._wait,
            sleep=self.stopped.wait,  # a backoff ends early when the push is being stopped
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            retrying(self._attempt, self.body(import_type, line))
        except _Transient as err:
            raise KiroframeUnavailable(
                f"Kiroframe at {self.endpoint} still failing after {self._retry_seconds:g} s: {err}") from None

    def _attempt(self, body: dict[str, Any]) -> None:
        try:
            response = self._session.post(self.endpoint, json=body, timeout=self._timeout)
        except CrossOriginRedirect as err:
            self.stopped.set()  # every other record would be sent there too: stop the queued sends now
            raise Redirected(f"Kiroframe at {self.url}: {err}") from None
        except requests.Timeout:
            raise _Transient("timed out") from None
        except requests.ConnectionError as err:
            raise _Transient(f"connection failed ({type(err).__name__})") from None
        status = response.status_code
        if status in (401, 403):
            self.stopped.set()  # every other record would be refused too: stop the queued sends now
            raise TokenRejected(self.url, status)
        if status == 429 or status >= 500:
            raise _Transient(_reason(response), _retry_after(response) if status == 429 else None)
        if status >= 400:
            raise RecordRejected(_reason(response))

    @staticmethod
    def _log_retry(state: RetryCallState) -> None:
        err = state.outcome.exception() if state.outcome else None
        wait_s = state.next_action.sleep if state.next_action else 0.0
        log.warning("Kiroframe did not take a record (%s); retrying in %.1f s", err, wait_s)


@dataclass
class PushResult:
    posted: int = 0
    skipped: int = 0  # acknowledged by an earlier, interrupted push of the same folder
    rejected: list[str] = field(default_factory=list)


def push(records: Iterable[Record], client: ImportClient, journal: DeliveryJournal, *, workers: int,
         tracker: Tracker) -> PushResult:
    """Send `records` in order of their phase (all of type 1, then 2, then 3), `workers` at a time.

    Raises `TokenRejected` or `KiroframeUnavailable` (after stopping the other threads) when the
    push cannot go on; everything acknowledged so far stays in the journal.
    """
    result = PushResult()
    lock = threading.Lock()

    def deliver(record: Record) -> None:
        if client.stopped.is_set():  # queued before the push was stopped: leave it for the next run
            return
        try:
            client.send(record.import_type, record.line)
        except RecordRejected as err:
            journal.rejected(record.key, err.message)
            with lock:
                result.rejected.append(f"{record.describe()}: {err.message}")
            tracker.fail()
            return
        journal.acknowledged(record.key)
        with lock:
            result.posted += 1
        tracker.advance()

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kiroframe-push") as pool:
        pending: set[Future[None]] = set()
        phase = None
        try:
            for record in _unsent(records, journal, result, tracker):
                if record.import_type != phase:  # a phase starts when the one before is done
                    _drain(pending, until=0)
                    phase = record.import_type
                pending.add(pool.submit(deliver, record))
                _drain(pending, until=workers * 2)
            _drain(pending, until=0)
        except BaseException:
            client.stopped.set()
            for future in pending:
                future.cancel()
            raise
    return result


def _unsent(records: Iterable[Record], journal: DeliveryJournal, result: PushResult,
            tracker: Tracker) -> Iterator[Record]:
    for record in records:
        tracker.add_total()
        if journal.settled(record.key):
            result.skipped += 1
            tracker.advance()
            continue
        yield record


def _drain(pending: set[Future[None]], *, until: int) -> None:
    """Wait until at most `until` sends are in flight, raising the first failure among them."""
    while len(pending) > until:
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            pending.discard(future)
            future.result()
