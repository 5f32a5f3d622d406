"""Credentials go only to the host they were given for: a redirect to another origin is not followed.

requests drops the ``Authorization`` header when a redirect leaves the host, but keeps every other
header a session carries (Kiroframe's ``x-api-key``) and follows wherever the server points. A
tracking server or Kiroframe endpoint that answers ``302 Location: http://elsewhere/`` would so
send the Job's credentials, or make the Job fetch an address of the server's choosing. A session
passed through `same_origin_only` follows redirects within its origin (scheme, host, port: an
``/api`` prefix moved, a trailing slash) and raises `CrossOriginRedirect` for any other.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin, urlsplit

import requests


class CrossOriginRedirect(requests.RequestException):
    """A server redirected a request to another scheme, host or port."""


def origin(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def _refuse_other_origins(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    if not response.is_redirect:
        return
    target = urljoin(response.url, response.headers.get("location", ""))
    if origin(target) != origin(response.url):
        response.close()
        raise CrossOriginRedirect(
            f"{origin(response.url)} redirected to {origin(target)} (HTTP {response.status_code}); not followed: "
            "credentials go only to the host they were given for", response=response)


def same_origin_only(session: requests.Session) -> requests.Session:
    """`session`, refusing redirects to another origin (`CrossOriginRedirect`)."""
    session.hooks["response"].append(_refuse_other_origins)
    return session
