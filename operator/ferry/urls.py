"""The URLs a spec may name: scheme, host, port and a plain path prefix, nothing else.

A tracking URI, a Kiroframe URL or an S3 endpoint says where a Job sends its credentials. A
fragment or a query would let the URL pick the exact path the Job requests (``...role#`` turns
``<uri>/api/2.0/...`` into a request for ``.../role``); user-info would put a credential in the spec.
So a spec's URL is ``http(s)://host[:port][/path]``, the path of unreserved characters, ``%`` and
``/``. The patterns are RE2-compatible: the CRDs carry them, so ``kubectl apply`` refuses the rest.
"""

from __future__ import annotations

_LABEL = r"[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?"
_HOST = rf"({_LABEL}(\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])"
_PORT = r"(:[0-9]{1,5})?"
_PATH = r"(/[-A-Za-z0-9._~%/]*)?"

HTTP_URL = rf"^https?://{_HOST}{_PORT}{_PATH}$"
"""``http(s)://host[:port][/path]``: no user-info, query or fragment."""

TRACKING_URI = rf"^(https?://{_HOST}{_PORT}{_PATH}|databricks(://[^\s/?#@]*)?)$"
"""An MLflow tracking server (`HTTP_URL`), or ``databricks`` / ``databricks://<profile>``."""

URL_RULE = "http(s)://host[:port][/path], with no user-info, query or fragment"
