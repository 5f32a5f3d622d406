"""HTTP to one MLflow server: pooled per-thread sessions, bounded retries, errors as one line.

Every engine call goes through `Transport.request`, so retries, credentials, TLS and the mapping
of failures to `ferry.errors` are decided in one place. Sessions are per thread because
`requests.Session` is not documented as thread-safe and engines use a thread pool.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ferry.errors import NotFoundError, ServerError
from ferry.redirects import CrossOriginRedirect, same_origin_only
from ferry.tracking.settings import TrackingSettings

JsonDict = dict[str, Any]

_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Databricks answers a token it does not know (revoked, expired, mistyped) with HTTP 403, not 401.
REFUSED_TOKEN = "invalid access token"


class ApiError(ServerError):
    """The server answered with an MLflow error; `error_code` is e.g. ``RESOURCE_ALREADY_EXISTS``."""

    def __init__(self, message: str, *, error_code: str = "", status: int = 0) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.status = status


class EndpointMissing(ServerError):
    """HTTP 404 without an MLflow error body: the server does not offer this endpoint."""


class LoginRejected(ServerError):
    """HTTP 401: the server does not accept who we say we are; nothing else can succeed either."""


class PermissionDenied(ServerError):
    """HTTP 403: we are known, but may not read or change this one object; others may still work."""


class _RetryableStatus(Exception):
    def __init__(self, response: requests.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class _QuickAckMixin:
    """Acknowledge a response's segments at once instead of after the 40 ms delayed-ACK timer.

    uvicorn with ``--workers`` > 1 (``mlflow server``'s default is 4) binds its listening socket
    with protocol 0, so asyncio does not set TCP_NODELAY on accepted connections. The server then
    writes the response headers and body as two segments, and Nagle's algorithm holds the body
    until the client ACKs the headers. A Linux client delays that ACK on a kept-alive
    connection, so every request after the first paid ~40 ms. TCP_QUICKACK is not sticky, so it
    is armed after each request is sent, just before the response is read.
    """

    sock: Any

    def getresponse(self) -> Any:
        if _QUICKACK is not None and self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        return super().getresponse()  # type: ignore[misc]


class _QuickAckHTTPConnection(_QuickAckMixin, HTTPConnection):
    pass


class _QuickAckHTTPSConnection(_QuickAckMixin, HTTPSConnection):
    pass


class _QuickAckHTTPPool(HTTPConnectionPool):
    ConnectionCls = _QuickAckHTTPConnection


class _QuickAckHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _QuickAckHTTPSConnection


class PooledAdapter(HTTPAdapter):
    """A pooled adapter with TCP_NODELAY on our sockets and quick ACKs of responses."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["socket_options"] = [
            *HTTPConnection.default_socket_options,
            (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),
        ]
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _QuickAckHTTPPool, "https": _QuickAckHTTPSPool}


class Transport:
    """Requests to `<uri>/...` with the environment's credentials and retries."""

    def __init__(self, uri: str, settings: TrackingSettings | None = None, *,
                 auth: requests.auth.AuthBase | None = None, credentials: str | None = None) -> None:
        """`auth` signs every request instead of the MLFLOW_TRACKING_* credentials (a Databricks
        workspace's SDK headers); `credentials` says in errors who that is, never the secret."""
        self.uri = uri.rstrip("/")
        self.settings = settings or TrackingSettings.from_env()
        self.auth = auth
        self.credentials = credentials
        self._local = threading.local()
        # Set once a request gave up on reaching the server (refused, reset, timed out after the
        # retries): whatever failed since may have failed for want of the server, not by itself.
        self.unreachable = False

    @property
    def session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._new_session()
            self._local.session = session
        return session

    def _new_session(self) -> requests.Session:
        s = self.settings
        session = same_origin_only(requests.Session())
        adapter = PooledAdapter(pool_connections=4, pool_maxsize=s.pool_size)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        if self.auth is not None:
            session.auth = self.auth
        elif s.token:
            session.headers["Authorization"] = f"Bearer {s.token}"
        elif s.username and s.password:
            session.auth = (s.username, s.password)
        if s.insecure_tls:
            session.verify = False
        elif s.server_cert_path:
            session.verify = s.server_cert_path
        if s.client_cert_path:
            session.cert = s.client_cert_path
        return session

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
                json: JsonDict | None = None, body: bytes | Path | None = None, stream: bool = False,
                what: str | None = None, headers: Mapping[str, str] | None = None) -> requests.Response:
        """Send one request, retrying connection failures, 429 and 5xx within the bounded time.

        `what` names the object asked for ("run 'abc'") so a RESOURCE_DOES_NOT_EXIST reads as
        "run 'abc' not found in MLflow at <uri>". A `Path` body is reopened on every attempt.
        """
        s = self.settings
        url = path if path.startswith(("http://", "https://")) else f"{self.uri}/{path.lstrip('/')}"
        retrying = Retrying(
            retry=retry_if_exception_type((requests.ConnectionError, requests.Timeout, _RetryableStatus)),
            stop=stop_after_attempt(s.max_attempts) | stop_after_delay(s.retry_seconds),
            wait=wait_exponential(multiplier=0.5, max=8),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    response = self._send(method, url, params, json, body, stream, headers)
                    if response.status_code in RETRY_STATUSES:
                        raise _RetryableStatus(response)
        except (requests.ConnectionError, requests.Timeout) as err:
            self.unreachable = True
            raise ServerError(f"cannot reach MLflow at {self.uri}: {_reason(err)}") from None
        except CrossOriginRedirect as err:
            raise ServerError(f"MLflow at {self.uri}: {err}") from None
        except _RetryableStatus as err:
            response = err.response
        if response.status_code >= 400:
            raise self._error(response, what)
        return response

    def call(self, method: str, path: str, *, params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
             json: JsonDict | None = None, what: str | None = None) -> JsonDict:
        """A REST call whose answer is a JSON object."""
        response = self.request(method, path, params=params, json=json, what=what)
        if not response.content:
            return {}
        try:
            data = response.json()
        except ValueError:
            raise ServerError(f"MLflow at {self.uri} answered {path} with something that is not JSON") from None
        return data if isinstance(data, dict) else {"value": data}

    def _send(self, method: str, url: str, params: Any, json: JsonDict | None, body: bytes | Path | None,
              stream: bool, headers: Mapping[str, str] | None) -> requests.Response:
        timeout = self.settings.timeout
        if isinstance(body, Path):
            with body.open("rb") as fh:
                return self.session.request(method, url, params=params, data=fh, timeout=timeout, stream=stream,
                                            headers=headers)
        return self.session.request(method, url, params=params, json=json, data=body, timeout=timeout,
                                    stream=stream, headers=headers)

    def _error(self, response: requests.Response, what: str | None) -> ServerError | NotFoundError:
        """The one-line error of a failed answer.

        401 is about the whole connection (`LoginRejected`); 403 is about one object
        (`PermissionDenied`), which engines list as a failure of that object and go on.
        """
        status = response.status_code
        if status == 401:
            return LoginRejected(self._login_refused(status))
        code, message = _mlflow_error(response)
        if status == 403 and message.lower().startswith(REFUSED_TOKEN):  # a workspace's answer to a bad token
            return LoginRejected(self._login_refused(status))
        if status == 403:
            verb = "read" if response.request.method in ("GET", "HEAD") else "change"
            target = what or response.request.path_url.split("?")[0]
            return PermissionDenied(f"MLflow at {self.uri} does not let {self._who()} {verb} {target} "
                                    f"(HTTP 403{': ' + message if message else ''})")
        if code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") and what:
            return NotFoundError(f"{what} not found in MLflow at {self.uri}")
        if code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
            return NotFoundError(f"MLflow at {self.uri}: {message}")
        if status == 404 and code in ("", "ENDPOINT_NOT_FOUND"):  # Databricks names what it does not serve
            return EndpointMissing(f"MLflow at {self.uri} has no endpoint {response.request.path_url.split('?')[0]} "
                               "(HTTP 404): is this an MLflow tracking server?")
        summary = message or response.reason or "error"
        return ApiError(f"MLflow at {self.uri} answered HTTP {status}: {code + ': ' if code else ''}{summary}",
                        error_code=code, status=status)


    def _who(self) -> str:
        s = self.settings
        if self.credentials:
            return f"the holder of {self.credentials}"
        if s.token:
            return "the holder of MLFLOW_TRACKING_TOKEN"
        return f"user '{s.username}'" if s.username else "an anonymous client"

    def _login_refused(self, status: int) -> str:
        s = self.settings
        if self.credentials:
            return f"MLflow at {self.uri} refused {self.credentials} (HTTP {status})"
        if s.token:
            return f"MLflow at {self.uri} refused the token in MLFLOW_TRACKING_TOKEN (HTTP 401)"
        if s.username and s.password:
            return (f"MLflow at {self.uri} refused the login of user '{s.username}' (HTTP 401): "
                    "check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD")
        return (f"MLflow at {self.uri} asks for a login (HTTP 401) and none was given: set "
                "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN")


def _mlflow_error(response: requests.Response) -> tuple[str, str]:
    try:
        data = response.json()
    except ValueError:
        return "", response.text.strip().splitlines()[0][:300] if response.text.strip() else ""
    if not isinstance(data, dict):
        return "", ""
    message = " ".join(str(data.get("message", "")).split())[:500]
    return str(data.get("error_code", "")), message


def _reason(err: BaseException) -> str:
    """The innermost OS-level reason ("Connection refused"), not urllib3's nested repr."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    if isinstance(err, requests.Timeout):
        return "timed out"
    text = str(err)
    return text.split("(Caused by ")[-1].rstrip(")") if "Caused by" in text else text
