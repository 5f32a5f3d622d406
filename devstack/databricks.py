"""A local stand-in for a Databricks workspace: HTTPS on 127.0.0.1, driven by the real clients.

No workspace is reachable from the test machines, so mlflow-ferry's Databricks paths are tested
against this server instead. It is shaped so that databricks-sdk and MLflow's own Databricks
client code (``MLFLOW_TRACKING_URI=databricks``) work against it unchanged:

- TLS with a CA of its own (`ca_bundle`; clients trust it through ``REQUESTS_CA_BUNDLE``).
- Bearer auth: a personal access token, or OAuth M2M tokens issued by ``POST /oidc/v1/token``
  (client credentials in the Basic header, as the SDK sends them) that expire after
  `token_lifetime` seconds, so a client's refreshing is exercised. Host metadata
  (``/.well-known/databricks-config``) and OIDC discovery are answered without auth.
- ``/api/2.0/mlflow/*`` is proxied to a real open-source ``mlflow server`` started with
  ``--default-artifact-root dbfs:/databricks/mlflow-tracking --no-serve-artifacts``, so runs get
  Databricks-style artifact URIs. As on Databricks, run artifacts are not served by the tracking
  API: ``artifacts/list`` and ``artifacts/credentials-for-read|write`` are answered here over
  local storage, with HMAC-signed, expiring URLs on this server standing in for S3 presigned URLs.
- MLflow 3's logged models likewise: ``logged-models/<id>/artifacts/credentials-for-upload|download``
  and ``.../directories``. The open-source server files a logged model's artifacts under
  ``<experiment>/models/<id>/artifacts``, a workspace under ``<experiment>/logged_models/<id>/...``
  (MLflow's client parses that), so proxied bodies are translated between the two.
- The Files API (``/api/2.0/fs/files|directories``) over the same storage, for the paths MLflow's
  SDK-based artifact repositories use (``/WorkspaceInternal/Mlflow/Artifacts/<exp>/Runs|LoggedModels``):
  by default MLflow reads and writes run and logged-model artifacts that way. Its presigned-URL
  coordination (``/api/2.0/fs/create-download-url``) and multipart uploads are not served; the SDK
  falls back to the plain Files API, and MLflow to the credentials endpoints, on their 404.
- The Workspace API (notebooks and directories), the Permissions API for experiments and
  registered models, SCIM ``Me``, and ``mlflow/databricks/registered-models/get``.
- Anything else (``/ajax-api/...``, ``/api/2.0/mlflow-artifacts/...``) answers 404
  ``ENDPOINT_NOT_FOUND``, as a workspace does.

A token the workspace does not know gets 403 ``{"error_code": 403, "message": "Invalid access
token."}``, as workspaces answer it; a request without one, and an expired OAuth token, get 401.

From a shell (prints the host, the CA path and the token, runs until Ctrl-C)::

    python -m devstack.databricks --backend http://127.0.0.1:5000 --dir /tmp/dbx
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import email.utils
import hashlib
import hmac
import html
import io
import json
import posixpath
import re
import secrets
import socket
import ssl
import threading
import time
import urllib.parse
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from devstack.cluster.pki import Pki
from devstack.mlflow_server import MlflowServer
from devstack.procs import free_port, serve_until_interrupted

# The artifact root to start the backing `mlflow server` with (see `backend_server`).
ARTIFACT_ROOT = "dbfs:/databricks/mlflow-tracking"
_LIST_PAGE_SIZE = 1000


INVALID_TOKEN = "Invalid access token."


class ApiError(Exception):
    """An error answered as Databricks does: ``{"error_code": ..., "message": ...}``."""

    def __init__(self, status: int, code: str | int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def backend_server(root: Path, **options: Any) -> MlflowServer:
    """The real MLflow server a workspace stands on: runs get ``dbfs:/databricks/mlflow-tracking``
    artifact URIs, and the server does not serve artifacts (the workspace does)."""
    return MlflowServer(root=root, serve_artifacts=False, default_artifact_root=ARTIFACT_ROOT, **options)


def _not_found(method: str, path: str) -> ApiError:
    return ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}'")


# -- TLS ----------------------------------------------------------------------------------------


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1/localhost signed by it: (ca, cert, key) PEMs.

    The local control plane's PKI, made in a directory of the workspace's own.
    """
    pki = Pki(directory)
    pki.ensure([])
    return pki.ca_cert, pki.serving_cert, pki.serving_key


# -- notebooks: one source, rendered in each export format --------------------------------------

_COMMENT = {"PYTHON": "#", "R": "#", "SQL": "--", "SCALA": "//"}
_EXTENSION = {"PYTHON": "py", "R": "r", "SQL": "sql", "SCALA": "scala"}
_SOURCE_HEADER = re.compile(r"^(#|--|//) Databricks notebook source\s*\n")
_SEPARATOR = re.compile(r"\n*^(?:#|--|//) COMMAND ----------\s*$\n*", re.MULTILINE)
_HTML_SOURCE = re.compile(r'<pre class="databricks-notebook-source"[^>]*>(.*?)</pre>', re.DOTALL)


def notebook_source(language: str, cells: list[str]) -> str:
    """SOURCE format: the header line, then the cells with COMMAND separators (as exported)."""
    comment = _COMMENT[language]
    body = f"\n\n{comment} COMMAND ----------\n\n".join(cells)
    return f"{comment} Databricks notebook source\n{body}"


def parse_source(text: str) -> list[str]:
    return [c for c in _SEPARATOR.split(_SOURCE_HEADER.sub("", text, count=1)) if c.strip()] or [""]


def render_jupyter(name: str, language: str, cells: list[str]) -> str:
    """A minimal valid nbformat-4 notebook holding the cells as code cells."""
    notebook = {
        "cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                   "source": cell.splitlines(keepends=True)} for cell in cells],
        "metadata": {"application/vnd.databricks.v1+notebook": {"language": language.lower(),
                                                                 "notebookName": name},
                     "language_info": {"name": language.lower()}},
        "nbformat": 4, "nbformat_minor": 0,
    }
    return json.dumps(notebook, indent=1, sort_keys=True)


def parse_jupyter(data: bytes) -> tuple[str, list[str]]:
    try:
        notebook = json.loads(data)
        cells = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                 for c in notebook["cells"] if c.get("cell_type") in ("code", "markdown")]
    except (ValueError, KeyError, TypeError) as e:
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Invalid ipynb content: {e}") from e
    meta = notebook.get("metadata", {}).get("application/vnd.databricks.v1+notebook", {})
    language = str(meta.get("language", "python")).upper()
    return (language if language in _COMMENT else "PYTHON"), cells or [""]


def render_html(name: str, language: str, cells: list[str]) -> str:
    source = html.escape(notebook_source(language, cells))
    return (f'<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n<title>{html.escape(name)}</title>\n'
            f'</head>\n<body>\n<pre class="databricks-notebook-source" data-language="{language.lower()}">'
            f"{source}</pre>\n</body>\n</html>\n")


def parse_html(data: bytes) -> list[str]:
    match = _HTML_SOURCE.search(data.decode("utf-8", errors="replace"))
    if match is None:
        raise ApiError(400, "INVALID_PARAMETER_VALUE", "The HTML content is not an exported notebook")
    return parse_source(html.unescape(match.group(1)))


def _zip(entries: dict[str, bytes]) -> bytes:
    """A zip whose bytes depend only on its entries (fixed timestamps, sorted names)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), entries[name])
    return buf.getvalue()


def _language_of_name(name: str) -> str | None:
    for language, ext in _EXTENSION.items():
        if name.lower().endswith("." + ext):
            return language
    return None


# -- the workspace tree -------------------------------------------------------------------------


@dataclass
class _Object:
    object_type: str  # DIRECTORY, NOTEBOOK or FILE
    object_id: int
    created_at: int
    modified_at: int
    language: str | None = None
    cells: list[str] = field(default_factory=list)
    data: bytes = b""  # FILE content

    def info(self, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {"object_type": self.object_type, "path": path, "object_id": self.object_id,
                               "resource_id": str(self.object_id)}
        if self.object_type != "DIRECTORY":
            out.update(created_at=self.created_at, modified_at=self.modified_at)
        if self.object_type == "NOTEBOOK":
            out["language"] = self.language
        if self.object_type == "FILE":
            out["size"] = len(self.data)
        return out


class WorkspaceTree:
    """Notebooks, files and directories by absolute path, as the Workspace API 2.0 sees them."""

    def __init__(self, home: str) -> None:
        self._lock = threading.Lock()
        self._ids = iter(range(1_000_000_000_000, 10**16))
        self._objects: dict[str, _Object] = {}
        for path in ("/", "/Users", "/Shared", home):
            self._objects[path] = self._new("DIRECTORY")

    def _new(self, object_type: str, **kw: Any) -> _Object:
        now = int(time.time() * 1000)
        return _Object(object_type, next(self._ids), now, now, **kw)

    @staticmethod
    def normalize(path: Any) -> str:
        if not isinstance(path, str) or not path.startswith("/"):
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Path ({path}) must be absolute")
        norm = posixpath.normpath(path)
        return "/" if norm == "//" else norm

    def _get(self, path: str) -> _Object:
        obj = self._objects.get(path)
        if obj is None:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Path ({path}) doesn't exist.")
        return obj

    def _children(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        return sorted(p for p in self._objects if p != path and p.startswith(prefix)
                      and "/" not in p[len(prefix):])

    def _descendants(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        return sorted(p for p in self._objects if p.startswith(prefix))

    def get_status(self, path: str) -> dict[str, Any]:
        path = self.normalize(path)
        with self._lock:
            return self._get(path).info(path)

    def list(self, path: str) -> dict[str, Any]:
        path = self.normalize(path)
        with self._lock:
            obj = self._get(path)
            if obj.object_type != "DIRECTORY":
                return {"objects": [obj.info(path)]}
            objects = [self._objects[p].info(p) for p in self._children(path)]
        return {"objects": objects} if objects else {}

    def mkdirs(self, path: str) -> None:
        path = self.normalize(path)
        with self._lock:
            parts = [p for p in path.split("/") if p]
            for i in range(1, len(parts) + 1):
                prefix = "/" + "/".join(parts[:i])
                obj = self._objects.get(prefix)
                if obj is None:
                    self._objects[prefix] = self._new("DIRECTORY")
                elif obj.object_type != "DIRECTORY":
                    raise ApiError(400, "RESOURCE_ALREADY_EXISTS",
                                   f"Cannot create directory {path}: {prefix} is not a directory.")

    def delete(self, path: str, recursive: bool) -> None:
        path = self.normalize(path)
        with self._lock:
            obj = self._get(path)
            if path == "/":
                raise ApiError(400, "INVALID_PARAMETER_VALUE", "Cannot delete the root folder")
            below = self._descendants(path) if obj.object_type == "DIRECTORY" else []
            if below and not recursive:
                raise ApiError(400, "DIRECTORY_NOT_EMPTY", f"Folder ({path}) is not empty.")
            for p in [path, *below]:
                del self._objects[p]

    def put(self, path: str, obj_kind: str, *, language: str | None = None, cells: list[str] | None = None,
            data: bytes = b"", overwrite: bool) -> None:
        """Create or (with `overwrite`) replace one notebook or file; its parent must exist."""
        with self._lock:
            parent = self._objects.get(posixpath.dirname(path))
            if parent is None or parent.object_type != "DIRECTORY":
                raise ApiError(404, "RESOURCE_DOES_NOT_EXIST",
                               f"The parent folder ({posixpath.dirname(path)}) does not exist.")
            existing = self._objects.get(path)
            if existing is not None and (not overwrite or existing.object_type == "DIRECTORY"):
                raise ApiError(400, "RESOURCE_ALREADY_EXISTS", f"Path ({path}) already exists.")
            obj = self._new(obj_kind, language=language, cells=list(cells or []), data=data)
            if existing is not None:
                obj.object_id, obj.created_at = existing.object_id, existing.created_at
            self._objects[path] = obj

    def import_(self, path: str, fmt: str, language: str | None, content: bytes, overwrite: bool) -> None:
        path = self.normalize(path)
        if fmt == "DBC" or (fmt in ("SOURCE", "AUTO") and content[:4] == b"PK\x03\x04"):
            self._import_archive(path, content, overwrite and fmt != "DBC")
            return
        if fmt == "JUPYTER":
            language, cells = parse_jupyter(content)
            self.put(path, "NOTEBOOK", language=language, cells=cells, overwrite=overwrite)
            return
        if fmt == "HTML":
            text = content.decode("utf-8", errors="replace")
            match = re.search(r'data-language="(\w+)"', text)
            lang = (match.group(1).upper() if match else language) or "PYTHON"
            self.put(path, "NOTEBOOK", language=lang, cells=parse_html(content), overwrite=overwrite)
            return
        if fmt not in ("SOURCE", "AUTO", "RAW"):
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Unsupported import format: {fmt}")
        text = content.decode("utf-8", errors="replace")
        header = _SOURCE_HEADER.match(text)
        if fmt == "SOURCE":
            language = language or (_header_language(header.group(1), path) if header else None)
            if language not in _COMMENT:
                raise ApiError(400, "INVALID_PARAMETER_VALUE",
                               "The language field is required to import a notebook in SOURCE format.")
            self.put(path, "NOTEBOOK", language=language, cells=parse_source(text), overwrite=overwrite)
        elif fmt == "AUTO" and header:
            stem = path.rsplit(".", 1)[0] if _language_of_name(path) else path
            self.put(stem, "NOTEBOOK", language=_header_language(header.group(1), path),
                     cells=parse_source(text), overwrite=overwrite)
        else:
            self.put(path, "FILE", data=content, overwrite=overwrite)

    def _import_archive(self, path: str, content: bytes, overwrite: bool) -> None:
        try:
            archive = zipfile.ZipFile(io.BytesIO(content))
            entries = {n: archive.read(n) for n in archive.namelist() if not n.endswith("/")}
        except zipfile.BadZipFile as e:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Invalid archive: {e}") from e
        if len(entries) == 1 and "/" not in next(iter(entries)):
            (name, data), = entries.items()
            text = data.decode("utf-8", errors="replace")
            self.put(path, "NOTEBOOK", language=_language_of_name(name) or "PYTHON",
                     cells=parse_source(text), overwrite=overwrite)
            return
        for name, data in sorted(entries.items()):
            language = _language_of_name(name)
            target = posixpath.join(path, name.rsplit(".", 1)[0] if language else name)
            self.mkdirs(posixpath.dirname(target))
            if language:
                self.put(target, "NOTEBOOK", language=language,
                         cells=parse_source(data.decode("utf-8", errors="replace")), overwrite=overwrite)
            else:
                self.put(target, "FILE", data=data, overwrite=overwrite)

    def export(self, path: str, fmt: str) -> tuple[bytes, str]:
        """The object rendered in `fmt`, and the file_type the API reports for it."""
        path = self.normalize(path)
        with self._lock:
            obj = self._get(path)
            if obj.object_type == "DIRECTORY":
                if fmt not in ("SOURCE", "DBC", "AUTO"):
                    raise ApiError(400, "INVALID_PARAMETER_VALUE",
                                   f"Exporting a directory is not supported in {fmt} format")
                entries: dict[str, bytes] = {}
                for p in self._descendants(path):
                    child = self._objects[p]
                    rel = posixpath.relpath(p, path)
                    if child.object_type == "NOTEBOOK":
                        entries[f"{rel}.{_EXTENSION[child.language or 'PYTHON']}"] = \
                            notebook_source(child.language or "PYTHON", child.cells).encode()
                    elif child.object_type == "FILE" and fmt == "AUTO":
                        entries[rel] = child.data
                return _zip(entries), "dbc" if fmt == "DBC" else "zip"
            if obj.object_type == "FILE":
                return obj.data, posixpath.splitext(path)[1].lstrip(".")
            name, language, cells = posixpath.basename(path), obj.language or "PYTHON", obj.cells
        if fmt in ("SOURCE", "AUTO"):
            return notebook_source(language, cells).encode(), _EXTENSION[language]
        if fmt == "JUPYTER":
            return render_jupyter(name, language, cells).encode(), "ipynb"
        if fmt == "HTML":
            return render_html(name, language, cells).encode(), "html"
        if fmt == "DBC":
            return _zip({f"{name}.{_EXTENSION[language]}": notebook_source(language, cells).encode()}), "dbc"
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Unsupported export format: {fmt}")


def _header_language(comment: str, path: str) -> str:
    if comment == "--":
        return "SQL"
    if comment == "//":
        return "SCALA"
    return "R" if path.endswith((".r", ".R")) else "PYTHON"


# -- permissions --------------------------------------------------------------------------------

_LEVELS = {
    "experiments": [
        ("CAN_READ", "Can view the experiment"),
        ("CAN_EDIT", "Can view, log runs, and edit the experiment"),
        ("CAN_MANAGE", "Can view, log runs, edit, delete, and change permissions of the experiment"),
    ],
    "registered-models": [
        ("CAN_READ", "Can view the details of the registered model and its model versions"),
        ("CAN_EDIT", "Can view and edit the details of a registered model and its model versions"),
        ("CAN_MANAGE_STAGING_VERSIONS", "Can edit and manage transitions to Staging"),
        ("CAN_MANAGE_PRODUCTION_VERSIONS", "Can edit and manage transitions to Staging and Production"),
        ("CAN_MANAGE", "Can manage permissions on, edit, and delete the registered model"),
    ],
}
_OBJECT_TYPE = {"experiments": "mlflow-experiment", "registered-models": "registered-model"}
_PRINCIPALS = ("user_name", "group_name", "service_principal_name")


# Who the workspace knows besides its own user and service principal: a grant to anyone else is
# refused, as a workspace refuses a principal it does not have.
KNOWN_USERS = ("a@example.com", "reader@example.com", "writer@example.com")
KNOWN_GROUPS = ("admins", "users", "data")
_PRINCIPAL_CLASS = {"user_name": "UserName", "group_name": "GroupName", "service_principal_name": "ServicePrincipalName"}


class Permissions:
    """Direct grants per object; every object also has the ``admins`` group's inherited CAN_MANAGE."""

    def __init__(self, known: set[tuple[str, str]] | None = None) -> None:
        self._lock = threading.Lock()
        self._grants: dict[tuple[str, str], dict[tuple[str, str], str]] = {}
        self.known = known if known is not None else (
            {("user_name", u) for u in KNOWN_USERS} | {("group_name", g) for g in KNOWN_GROUPS})

    def levels(self, kind: str) -> dict[str, Any]:
        return {"permission_levels": [{"permission_level": lv, "description": d} for lv, d in _LEVELS[kind]]}

    def get(self, kind: str, object_id: str) -> dict[str, Any]:
        with self._lock:
            grants = dict(self._grants.get((kind, object_id), {}))
        acl: dict[tuple[str, str], list[dict[str, Any]]] = {
            ("group_name", "admins"): [{"permission_level": "CAN_MANAGE", "inherited": True,
                                        "inherited_from_object": [f"/{kind}/"]}]}
        for principal, level in grants.items():
            acl.setdefault(principal, []).insert(0, {"permission_level": level, "inherited": False})
        return {
            "object_id": f"/{kind}/{object_id}", "object_type": _OBJECT_TYPE[kind],
            "access_control_list": [{key: name, "all_permissions": perms}
                                    for (key, name), perms in sorted(acl.items())],
        }

    def change(self, kind: str, object_id: str, body: dict[str, Any], *, replace: bool) -> dict[str, Any]:
        allowed = {lv for lv, _ in _LEVELS[kind]}
        entries: dict[tuple[str, str], str] = {}
        for entry in body.get("access_control_list") or []:
            named = [(k, entry[k]) for k in _PRINCIPALS if entry.get(k)]
            if len(named) != 1:
                raise ApiError(400, "INVALID_PARAMETER_VALUE",
                               "Each access control entry needs exactly one of user_name, group_name "
                               "and service_principal_name")
            level = entry.get("permission_level")
            if level not in allowed:
                raise ApiError(400, "INVALID_PARAMETER_VALUE",
                               f"Permission level {level} is not valid for {_OBJECT_TYPE[kind]}; "
                               f"valid levels: {', '.join(sorted(allowed))}")
            if named[0] not in self.known:
                raise ApiError(400, "INVALID_PARAMETER_VALUE",
                               f"Principal: {_PRINCIPAL_CLASS[named[0][0]]}({named[0][1]}) does not exist")
            entries[named[0]] = level
        with self._lock:
            grants = {} if replace else self._grants.get((kind, object_id), {})
            self._grants[(kind, object_id)] = {**grants, **entries}
        return self.get(kind, object_id)


def registered_model_id(name: str) -> str:
    """The stable 32-hex id a registered model has in this workspace (Databricks ids look alike)."""
    return hashlib.sha256(f"registered-model:{name}".encode()).hexdigest()[:32]


# -- the server ---------------------------------------------------------------------------------


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, list[str]]
    raw_query: str
    headers: Any
    body: bytes
    principal: str = ""  # who the bearer token belongs to, once authenticated

    def json(self) -> dict[str, Any]:
        if not self.body:
            return {}
        try:
            data = json.loads(self.body)
        except ValueError as e:
            raise ApiError(400, "MALFORMED_REQUEST", f"Invalid JSON given in the body of the request: {e}") from e
        if not isinstance(data, dict):
            raise ApiError(400, "MALFORMED_REQUEST", "The body of the request must be a JSON object")
        return data

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _json(payload: Any, status: int = 200) -> _Reply:
    return _Reply(status, json.dumps(payload).encode())


def _s3_error(status: int, code: str, message: str) -> _Reply:
    body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return _Reply(status, body.encode(), "application/xml")


@dataclass
class DatabricksWorkspace:
    """The workspace, served by threads of this process; `stop()` closes it and its connections.

    `backend` is the URL of the real MLflow server behind ``/api/2.0/mlflow``; `root` holds the
    TLS material (``root/tls``) and the run artifacts (``root/dbfs/<path of the dbfs: URI>``).
    """

    backend: str
    root: Path
    token: str = field(default_factory=lambda: "dapi" + secrets.token_hex(16))
    client_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    client_secret: str = field(default_factory=lambda: "dose" + secrets.token_hex(16))
    token_lifetime: float = 3600.0
    user_name: str = "ferry-tester@example.com"
    signed_url_lifetime: float = 900.0
    port: int = field(default_factory=free_port)
    workspace_id: str = "1234567890123456"
    account_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.backend = self.backend.rstrip("/")
        self._lock = threading.Lock()
        self._oauth_tokens: dict[str, float] = {}  # token -> expiry (time.time())
        self._requests: Counter[str] = Counter()
        self._issued = 0
        self._unauthorized = 0
        self._sign_key = secrets.token_bytes(32)
        self._artifact_roots: dict[tuple[str, str], str] = {}  # (kind, id) -> artifact URI
        self._model_names: dict[str, str] = {}  # registered-model id -> name
        self._local = threading.local()
        self.workspace = WorkspaceTree(f"/Users/{self.user_name}")
        self.permissions = Permissions()
        self.permissions.known |= {("user_name", self.user_name), ("service_principal_name", self.client_id)}
        self._server: _TlsServer | None = None
        self._ca_path: Path | None = None

    # -- what clients are given ------------------------------------------------------------------

    @property
    def host(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_bundle(self) -> str:
        if self._ca_path is None:
            raise RuntimeError("the workspace is not started")
        return str(self._ca_path)

    def env_pat(self) -> dict[str, str]:
        return {"DATABRICKS_HOST": self.host, "DATABRICKS_TOKEN": self.token,
                "REQUESTS_CA_BUNDLE": self.ca_bundle}

    def env_oauth(self) -> dict[str, str]:
        return {"DATABRICKS_HOST": self.host, "DATABRICKS_CLIENT_ID": self.client_id,
                "DATABRICKS_CLIENT_SECRET": self.client_secret, "REQUESTS_CA_BUNDLE": self.ca_bundle}

    def write_profile(self, path: Path | str, profile: str = "DEFAULT", *, oauth: bool = False) -> Path:
        """Add (or replace) one section of a ``.databrickscfg``. The SDK has no setting for a CA
        bundle, so clients still need ``REQUESTS_CA_BUNDLE`` in their environment."""
        import configparser

        path = Path(path)
        config = configparser.ConfigParser()
        if path.exists():
            config.read(path)
        values = {"host": self.host}
        values.update({"client_id": self.client_id, "client_secret": self.client_secret} if oauth
                      else {"token": self.token})
        config[profile] = values
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as out:
            config.write(out)
        path.chmod(0o600)
        return path

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> DatabricksWorkspace:
        self.root.mkdir(parents=True, exist_ok=True)
        ca, cert, key = make_certificates(self.root / "tls")
        self._ca_path = ca
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._server = _TlsServer(("127.0.0.1", self.port), _handler_for(self), context)
        threading.Thread(target=self._server.serve_forever, name="databricks-stand-in", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
            self._server = None

    # -- what tests read -------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """``{"requests": {path: count}, "oauth_tokens_issued": n, "unauthorized": n}``.

        Signed-URL requests count under ``/signed/runs`` or ``/signed/logged-models``, Files API ones
        under ``/api/2.0/fs/files`` or ``/api/2.0/fs/directories``; "unauthorized" counts every 401 and refused token
        answered, a refused client secret at the token endpoint included."""
        with self._lock:
            return {"requests": dict(self._requests), "oauth_tokens_issued": self._issued,
                    "unauthorized": self._unauthorized}

    def reset_stats(self) -> None:
        with self._lock:
            self._requests.clear()
            self._issued = 0
            self._unauthorized = 0

    def artifact_dir(self, artifact_uri: str) -> Path:
        """Where the files of a ``dbfs:/`` artifact URI live."""
        if not artifact_uri.startswith("dbfs:/"):
            raise ApiError(400, "INVALID_STATE", f"Artifact root {artifact_uri} is not on DBFS")
        rel = posixpath.normpath(artifact_uri[len("dbfs:"):]).lstrip("/")
        if rel.startswith(".."):
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Invalid artifact root {artifact_uri}")
        return self.root / "dbfs" / rel

    # -- request handling ------------------------------------------------------------------------

    def handle(self, req: _Request) -> _Reply:
        # Signed URLs and the Files API count by endpoint, not one key per file.
        key = req.path
        if key.startswith("/signed/"):
            key = "/".join(key.split("/")[:3])
        elif key.startswith("/api/2.0/fs/"):
            key = "/".join(key.split("/")[:5])
        with self._lock:
            self._requests[key] += 1
        try:
            open_route = self._open_route(req)
            if open_route is not None:
                return open_route()
            self._authenticate(req)
            return self._route(req)
        except ApiError as e:
            if e.status == 401 or e.message == INVALID_TOKEN:
                with self._lock:
                    self._unauthorized += 1
            return _json({"error_code": e.code, "message": e.message}, e.status)

    def _open_route(self, req: _Request) -> Callable[[], _Reply] | None:
        """Routes answered without a bearer token: discovery, the token endpoint, signed URLs."""
        if req.method == "GET" and req.path == "/.well-known/databricks-config":
            return lambda: _json({"oidc_endpoint": f"{self.host}/oidc", "workspace_id": self.workspace_id,
                                  "account_id": self.account_id, "cloud": "aws"})
        if req.method == "GET" and req.path == "/oidc/.well-known/oauth-authorization-server":
            return lambda: _json({
                "issuer": f"{self.host}/oidc", "authorization_endpoint": f"{self.host}/oidc/v1/authorize",
                "token_endpoint": f"{self.host}/oidc/v1/token", "jwks_uri": f"{self.host}/oidc/jwks.json",
                "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
                "response_types_supported": ["code"], "scopes_supported": ["all-apis", "offline_access"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            })
        if req.path == "/oidc/v1/token":
            return lambda: self._issue_token(req)
        if req.path.startswith("/signed/"):
            return lambda: self._serve_signed(req)
        return None

    def _issue_token(self, req: _Request) -> _Reply:
        if req.method != "POST":
            raise _not_found(req.method, req.path)
        form = {k: v[0] for k, v in urllib.parse.parse_qs(req.body.decode()).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        auth = req.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            with_colon = base64.b64decode(auth[6:]).decode(errors="replace")
            client_id, _, client_secret = with_colon.partition(":")
            client_id, client_secret = urllib.parse.unquote(client_id), urllib.parse.unquote(client_secret)
        if form.get("grant_type") != "client_credentials":
            return _json({"error": "unsupported_grant_type",
                          "error_description": f"grant_type {form.get('grant_type')} is not supported"}, 400)
        if not (hmac.compare_digest(client_id or "", self.client_id)
                and hmac.compare_digest(client_secret or "", self.client_secret)):
            with self._lock:
                self._unauthorized += 1
            return _json({"error": "invalid_client", "error_description": "Client authentication failed"}, 401)
        access_token = "eyJ" + secrets.token_urlsafe(32)
        with self._lock:
            now = time.time()
            self._oauth_tokens = {t: e for t, e in self._oauth_tokens.items() if e > now}
            self._oauth_tokens[access_token] = now + self.token_lifetime
            self._issued += 1
        return _json({"access_token": access_token, "token_type": "Bearer", "scope": form.get("scope", "all-apis"),
                      "expires_in": int(self.token_lifetime)})

    def _authenticate(self, req: _Request) -> None:
        auth = req.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            raise ApiError(401, 401, "Credential was not sent or was of an unsupported type for this API.")
        token = auth[len("Bearer "):].strip()
        if hmac.compare_digest(token, self.token):
            req.principal = self.user_name
            return
        with self._lock:
            expiry = self._oauth_tokens.get(token)
        if expiry is None:
            raise ApiError(403, 403, INVALID_TOKEN)
        if expiry <= time.time():
            raise ApiError(401, 401, "Token expired. Please obtain a new token.")
        req.principal = self.client_id

    def _route(self, req: _Request) -> _Reply:
        m, p = req.method, req.path
        if p == "/api/2.0/preview/scim/v2/Me" and m == "GET":
            return _json(self._me(req.principal))
        if p.startswith("/api/2.0/workspace/"):
            return self._workspace(req, p[len("/api/2.0/workspace/"):])
        perm = re.fullmatch(r"/api/2\.0/permissions/(experiments|registered-models)/([^/]+)(/permissionLevels)?", p)
        if perm is not None:
            return self._permissions(req, perm.group(1), perm.group(2), bool(perm.group(3)))
        if p.startswith("/api/2.0/mlflow/"):
            return self._mlflow(req, p[len("/api/2.0/mlflow/"):])
        files = re.fullmatch(r"/api/2\.0/fs/(files|directories)(/.*)", p)
        if files is not None:
            return self._files(req, files.group(1), urllib.parse.unquote(files.group(2)))
        raise _not_found(m, p)

    def _me(self, principal: str) -> dict[str, Any]:
        is_user = principal == self.user_name
        me: dict[str, Any] = {
            "id": hashlib.sha256(principal.encode()).hexdigest()[:16], "userName": principal, "active": True,
            "displayName": "Ferry Tester" if is_user else "ferry-service-principal",
            "groups": [{"display": "admins", "type": "direct", "value": "1000000000000001"}],
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                        "urn:ietf:params:scim:schemas:extension:workspace:2.0:User"],
        }
        if is_user:
            me["emails"] = [{"type": "work", "value": principal, "primary": True}]
        return me

    # -- Workspace API ---------------------------------------------------------------------------

    def _workspace(self, req: _Request, op: str) -> _Reply:
        tree = self.workspace
        if req.method == "GET" and op == "get-status":
            return _json(tree.get_status(_required(req.param("path"), "path")))
        if req.method == "GET" and op == "list":
            return _json(tree.list(_required(req.param("path"), "path")))
        if req.method == "GET" and op == "export":
            fmt = req.param("format") or "SOURCE"
            data, file_type = tree.export(_required(req.param("path"), "path"), fmt)
            if (req.param("direct_download") or "").lower() == "true":
                return _Reply(200, data, "application/octet-stream")
            return _json({"content": base64.b64encode(data).decode(), "file_type": file_type})
        if req.method != "POST":
            raise _not_found(req.method, req.path)
        if op == "import":
            body = self._import_body(req)
            fmt = str(body.get("format") or "SOURCE")
            overwrite = str(body.get("overwrite", False)).lower() == "true"
            tree.import_(_required(body.get("path"), "path"), fmt, body.get("language"),
                         body["content"], overwrite)
            return _json({})
        body = req.json()
        if op == "mkdirs":
            tree.mkdirs(_required(body.get("path"), "path"))
            return _json({})
        if op == "delete":
            tree.delete(_required(body.get("path"), "path"), bool(body.get("recursive", False)))
            return _json({})
        raise _not_found(req.method, req.path)

    @staticmethod
    def _import_body(req: _Request) -> dict[str, Any]:
        """The JSON body (base64 content), or the multipart form the SDK's `upload` posts."""
        ctype = req.headers.get("Content-Type", "")
        if ctype.startswith("multipart/form-data"):
            message = BytesParser(policy=HTTP).parsebytes(
                f"Content-Type: {ctype}\r\n\r\n".encode() + req.body)
            body: dict[str, Any] = {}
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True) or b""
                body[name] = payload if name == "content" else payload.decode()
            body.setdefault("content", b"")
            return body
        body = req.json()
        try:
            body["content"] = base64.b64decode(body.get("content") or "", validate=True)
        except ValueError as e:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"content is not valid base64: {e}") from e
        return body

    # -- Permissions API -------------------------------------------------------------------------

    def _permissions(self, req: _Request, kind: str, object_id: str, levels: bool) -> _Reply:
        if kind == "experiments":
            self._backend_json("GET", "experiments/get", {"experiment_id": object_id},
                               missing=f"Experiment {object_id} does not exist.")
        elif self._model_name(object_id) is None:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Registered model {object_id} does not exist.")
        if levels:
            if req.method != "GET":
                raise _not_found(req.method, req.path)
            return _json(self.permissions.levels(kind))
        if req.method == "GET":
            return _json(self.permissions.get(kind, object_id))
        if req.method in ("PATCH", "PUT"):
            return _json(self.permissions.change(kind, object_id, req.json(), replace=req.method == "PUT"))
        raise _not_found(req.method, req.path)

    def _model_name(self, model_id: str) -> str | None:
        with self._lock:
            if model_id in self._model_names:
                return self._model_names[model_id]
        token: str | None = None
        while True:
            params = {"max_results": "1000", **({"page_token": token} if token else {})}
            page = self._backend_json("GET", "registered-models/search", params)
            for model in page.get("registered_models", []):
                with self._lock:
                    self._model_names[registered_model_id(model["name"])] = model["name"]
            token = page.get("next_page_token")
            if not token:
                break
        with self._lock:
            return self._model_names.get(model_id)

    # -- MLflow: proxied, except what Databricks serves itself ---------------------------------

    def _mlflow(self, req: _Request, op: str) -> _Reply:
        if op == "artifacts/list" and req.method == "GET":
            run_id = _required(req.param("run_id") or req.param("run_uuid"), "run_id")
            return self._list_artifacts(req, "runs", run_id, req.param("path"))
        if op in ("artifacts/credentials-for-read", "artifacts/credentials-for-write"):
            return self._run_credentials(req, "PUT" if op.endswith("write") else "GET")
        model_op = re.fullmatch(r"logged-models/([^/]+)/artifacts/"
                                r"(credentials-for-upload|credentials-for-download|directories)", op)
        if model_op is not None:
            return self._logged_model_artifacts(req, model_op.group(1), model_op.group(2))
        if op == "databricks/registered-models/get" and req.method == "GET":
            name = _required(req.param("name"), "name")
            model = self._backend_json("GET", "registered-models/get", {"name": name})["registered_model"]
            model_id = registered_model_id(name)
            with self._lock:
                self._model_names[model_id] = name
            return _json({"registered_model_databricks": {**model, "id": model_id,
                                                          "permission_level": "CAN_MANAGE"}})
        if op.startswith("artifacts/"):  # multipart uploads and anything else of the artifacts service
            raise _not_found(req.method, req.path)
        return self._proxy(req)

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.trust_env = False
        return session

    def _proxy(self, req: _Request) -> _Reply:
        """Forward to the backend, with logged models' artifact URIs translated both ways."""
        query = urllib.parse.urlencode([(k, _to_backend(v)) for k, vs in req.query.items() for v in vs])
        url = f"{self.backend}{req.path}" + (f"?{query}" if query else "")
        headers = {k: v for k, v in (("Content-Type", req.headers.get("Content-Type")),) if v}
        body = _to_backend(req.body.decode("utf-8", errors="surrogateescape")).encode(
            "utf-8", errors="surrogateescape") if req.body else None
        resp = self._session().request(req.method, url, data=body, headers=headers, timeout=120)
        ctype = resp.headers.get("Content-Type", "application/json")
        if resp.status_code == 404 and "json" not in ctype:  # a route the backend has not either
            raise _not_found(req.method, req.path)
        content = _to_workspace(resp.text).encode() if "json" in ctype else resp.content
        return _Reply(resp.status_code, content, ctype)

    def _backend_json(self, method: str, op: str, params: dict[str, str], missing: str | None = None) -> Any:
        resp = self._session().request(method, f"{self.backend}/api/2.0/mlflow/{op}", params=params, timeout=120)
        if resp.ok:
            return json.loads(_to_workspace(resp.text))
        try:
            err = resp.json()
        except ValueError:
            err = {"error_code": "INTERNAL_ERROR", "message": resp.text[:200]}
        if missing is not None and resp.status_code in (400, 404):
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", missing)
        raise ApiError(resp.status_code, err.get("error_code", "INTERNAL_ERROR"), err.get("message", ""))

    def _artifact_root(self, kind: str, owner: str) -> str:
        """The artifact URI of a run or a logged model, as the backend has it (it never changes)."""
        with self._lock:
            if (kind, owner) in self._artifact_roots:
                return self._artifact_roots[(kind, owner)]
        if kind == "runs":
            uri = self._backend_json("GET", "runs/get", {"run_id": owner})["run"]["info"]["artifact_uri"]
        else:
            uri = self._backend_json("GET", f"logged-models/{owner}", {})["model"]["info"]["artifact_uri"]
        with self._lock:
            self._artifact_roots[(kind, owner)] = uri
        return uri

    def _list_artifacts(self, req: _Request, kind: str, owner: str, path: str | None) -> _Reply:
        """One directory's entries, paths relative to the owner's artifact root, as MLflow's
        ListArtifacts; a file's own path lists as that one file, as on Databricks."""
        root_uri = self._artifact_root(kind, owner)
        base = self.artifact_dir(root_uri)
        rel = _safe_relpath(path or "")
        target = base / rel if rel else base
        if target.is_file():
            return _json({"root_uri": root_uri, "files": [
                {"path": rel, "is_dir": False, "file_size": target.stat().st_size}]})
        entries = sorted(target.iterdir(), key=lambda e: e.name) if target.is_dir() else []
        entries = [e for e in entries if not e.name.endswith(".part")]
        offset = int(req.param("page_token") or 0)
        page = entries[offset:offset + _LIST_PAGE_SIZE]
        files = [{"path": posixpath.join(rel, e.name), "is_dir": True} if e.is_dir() else
                 {"path": posixpath.join(rel, e.name), "is_dir": False, "file_size": e.stat().st_size}
                 for e in page]
        out: dict[str, Any] = {"root_uri": root_uri, "files": files}
        if offset + _LIST_PAGE_SIZE < len(entries):
            out["next_page_token"] = str(offset + _LIST_PAGE_SIZE)
        return _json(out)

    def _signed_infos(self, method: str, kind: str, owner: str, paths: list[str]) -> list[dict[str, Any]]:
        self._artifact_root(kind, owner)
        expires = int(time.time() + self.signed_url_lifetime)
        return [{"path": p, "type": "AWS_PRESIGNED_URL", "headers": [],
                 "signed_uri": self._sign(method, kind, owner, _safe_relpath(p), expires)} for p in paths]

    def _run_credentials(self, req: _Request, method: str) -> _Reply:
        """Signed URLs for paths of a run, as ``credential_infos`` of type AWS_PRESIGNED_URL.

        MLflow 3 POSTs ``{"run_id", "path": [...]}``; older clients GET with repeated ``path``.
        """
        if req.method == "POST":
            body = req.json()
            run_id, paths = body.get("run_id"), body.get("path") or []
            paths = [paths] if isinstance(paths, str) else paths
        elif req.method == "GET":
            run_id, paths = req.param("run_id"), req.query.get("path", [])
        else:
            raise _not_found(req.method, req.path)
        run_id = _required(run_id, "run_id")
        infos = [{"run_id": run_id, **info} for info in self._signed_infos(method, "runs", run_id, paths)]
        return _json({"credential_infos": infos})

    def _logged_model_artifacts(self, req: _Request, model_id: str, op: str) -> _Reply:
        """A logged model's artifacts (MLflow 3): signed URLs, and its directory listing."""
        if op == "directories":
            if req.method != "GET":
                raise _not_found(req.method, req.path)
            return self._list_artifacts(req, "logged-models", model_id, req.param("artifact_directory_path"))
        if req.method != "POST":
            raise _not_found(req.method, req.path)
        paths = req.json().get("paths") or []
        method = "PUT" if op == "credentials-for-upload" else "GET"
        return _json({"credentials": [{"model_id": model_id, "credential_info": info}
                                      for info in self._signed_infos(method, "logged-models", model_id, paths)]})

    # -- Files API, over the same artifact storage ------------------------------------------------

    def _fs_target(self, fs_path: str) -> tuple[Path, str]:
        """The local file of a Files API path of run or logged-model artifacts, and that path
        normalized. MLflow's SDK-based repositories address them as
        ``/WorkspaceInternal/Mlflow/Artifacts/<exp>/Runs/<run>/...`` and ``.../LoggedModels/<id>/...``."""
        norm = posixpath.normpath(fs_path)
        found = re.fullmatch(r"/WorkspaceInternal/Mlflow/Artifacts/([^/]+)/(Runs|LoggedModels)/([^/]+)(/.*)?", norm)
        if found is None:
            raise ApiError(404, "NOT_FOUND", f"The path {fs_path} is not served by this workspace")
        experiment_id, kind, owner, rest = found.groups()
        kind = "runs" if kind == "Runs" else "logged-models"
        try:
            root_uri = self._artifact_root(kind, owner)
        except ApiError as e:
            raise ApiError(404, "NOT_FOUND", f"The path {fs_path} does not exist") from e
        owner_uri = f"{ARTIFACT_ROOT}/{experiment_id}/" + (owner if kind == "runs" else f"logged_models/{owner}")
        full_uri = owner_uri + (rest or "")
        if full_uri != root_uri and not full_uri.startswith(root_uri + "/"):
            raise ApiError(403, "PERMISSION_DENIED", f"The path {fs_path} is outside the artifacts of {owner}")
        return self.artifact_dir(root_uri) / _safe_relpath(full_uri[len(root_uri):]), norm

    def _files(self, req: _Request, what: str, fs_path: str) -> _Reply:
        target, norm = self._fs_target(fs_path)
        m = req.method
        if what == "directories":
            if m == "PUT":
                target.mkdir(parents=True, exist_ok=True)
                return _json({})
            if not target.is_dir():
                raise ApiError(404, "NOT_FOUND", f"The directory {norm} does not exist")
            if m == "HEAD":
                return _Reply(200, b"")
            if m == "DELETE":
                if any(target.iterdir()):
                    raise ApiError(409, "DIRECTORY_NOT_EMPTY", f"The directory {norm} is not empty")
                target.rmdir()
                return _json({})
            if m != "GET":
                raise _not_found(m, req.path)
            entries = sorted((e for e in target.iterdir() if not e.name.endswith(".part")), key=lambda e: e.name)
            offset = int(req.param("page_token") or 0)
            size = min(int(req.param("page_size") or _LIST_PAGE_SIZE), _LIST_PAGE_SIZE)
            contents = [{"path": posixpath.join(norm, e.name) + ("/" if e.is_dir() else ""), "name": e.name,
                         "is_directory": e.is_dir(),
                         **({} if e.is_dir() else {"file_size": e.stat().st_size,
                                                   "last_modified": int(e.stat().st_mtime * 1000)})}
                        for e in entries[offset:offset + size]]
            out: dict[str, Any] = {"contents": contents} if contents else {}
            if offset + size < len(entries):
                out["next_page_token"] = str(offset + size)
            return _json(out)
        if m == "PUT":
            if target.exists() and (req.param("overwrite") or "true").lower() == "false":
                raise ApiError(409, "ALREADY_EXISTS", f"The file {norm} already exists")
            _write_atomically(target, req.body)
            return _Reply(204, b"", "text/plain")
        if m == "DELETE":
            if not target.is_file():
                raise ApiError(404, "NOT_FOUND", f"The file {norm} does not exist")
            target.unlink()
            return _Reply(204, b"", "text/plain")
        if m not in ("GET", "HEAD"):
            raise _not_found(m, req.path)
        if not target.is_file():
            raise ApiError(404, "NOT_FOUND", f"The file {norm} does not exist")
        modified = email.utils.formatdate(target.stat().st_mtime, usegmt=True)
        if m == "HEAD":
            return _Reply(200, b"", "application/octet-stream",
                          {"Content-Length": str(target.stat().st_size), "Last-Modified": modified})
        reply = _byte_range(target.read_bytes(), req.headers.get("Range", ""))
        reply.headers["Last-Modified"] = modified
        return reply

    def _signature(self, method: str, kind: str, owner: str, rel: str, expires: int) -> str:
        msg = f"{method}\n{kind}\n{owner}\n{rel}\n{expires}".encode()
        return hmac.new(self._sign_key, msg, hashlib.sha256).hexdigest()

    def _sign(self, method: str, kind: str, owner: str, rel: str, expires: int) -> str:
        query = urllib.parse.urlencode({"X-Method": method, "X-Expires": expires,
                                        "X-Signature": self._signature(method, kind, owner, rel, expires)})
        return f"{self.host}/signed/{kind}/{owner}/{urllib.parse.quote(rel)}?{query}"

    def _serve_signed(self, req: _Request) -> _Reply:
        parts = req.path.split("/", 4)  # "", "signed", kind, owner, rel
        if len(parts) != 5 or req.method not in ("GET", "PUT", "HEAD"):
            return _s3_error(400, "InvalidRequest", "Malformed signed URL")
        _, _, kind, owner, quoted = parts
        rel = urllib.parse.unquote(quoted)
        method = "GET" if req.method == "HEAD" else req.method
        try:
            expires = int(req.param("X-Expires") or 0)
        except ValueError:
            expires = 0
        expected = self._signature(method, kind, owner, rel, expires)
        if req.param("X-Method") != method or not hmac.compare_digest(req.param("X-Signature") or "", expected):
            return _s3_error(403, "SignatureDoesNotMatch", "The request signature does not match")
        if expires < time.time():
            return _s3_error(403, "AccessDenied", "Request has expired")
        with self._lock:
            root_uri = self._artifact_roots.get((kind, owner))
        if root_uri is None:
            return _s3_error(403, "AccessDenied", "Unknown resource")
        target = self.artifact_dir(root_uri) / _safe_relpath(rel)
        if method == "PUT":
            _write_atomically(target, req.body)
            return _Reply(200, b"", "text/plain", {"ETag": f'"{hashlib.md5(req.body).hexdigest()}"'})
        if not target.is_file():
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        return _byte_range(target.read_bytes(), req.headers.get("Range", ""))


# The open-source server puts a logged model's artifacts under <experiment>/models/<id>/artifacts;
# a workspace (and MLflow's client for it) has them under <experiment>/logged_models/<id>/artifacts.
_BACKEND_MODEL_URI = re.compile(r"(dbfs:/databricks/mlflow-tracking/[^/\"\s]+)/models/(m-[0-9a-f]+)/")
_WORKSPACE_MODEL_URI = re.compile(r"(dbfs:/databricks/mlflow-tracking/[^/\"\s]+)/logged_models/(m-[0-9a-f]+)/")


def _to_workspace(text: str) -> str:
    return _BACKEND_MODEL_URI.sub(r"\1/logged_models/\2/", text)


def _to_backend(text: str) -> str:
    return _WORKSPACE_MODEL_URI.sub(r"\1/models/\2/", text)


def _write_atomically(target: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never half of one (``.part`` files are not listed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    partial.write_bytes(data)
    partial.replace(target)


def _byte_range(data: bytes, range_header: str) -> _Reply:
    ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", range_header)
    if ranged is None:
        return _Reply(200, data, "application/octet-stream")
    start = int(ranged.group(1))
    end = int(ranged.group(2)) if ranged.group(2) else len(data) - 1
    chunk = data[start:end + 1]
    return _Reply(206, chunk, "application/octet-stream",
                  {"Content-Range": f"bytes {start}-{start + len(chunk) - 1}/{len(data)}"})


def _required(value: Any, name: str) -> Any:
    if value is None or value == "":
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Missing required field: {name}")
    return value


def _safe_relpath(path: str) -> str:
    rel = posixpath.normpath(path.strip("/")) if path.strip("/") else ""
    if rel == ".":
        return ""
    if rel.startswith("..") or rel.startswith("/"):
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Invalid artifact path {path}")
    return rel


class _TlsServer(ThreadingHTTPServer):
    """TLS per connection, in the connection's own thread (a slow handshake stalls nobody else)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 context: ssl.SSLContext) -> None:
        super().__init__(address, handler)
        self.context = context
        self._live: set[socket.socket] = set()
        self._live_lock = threading.Lock()

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(30)
        try:
            conn = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        with self._live_lock:
            self._live.add(conn)
        try:
            self.RequestHandlerClass(conn, client_address, self)
        except (ssl.SSLError, OSError):
            pass
        finally:
            with self._live_lock:
                self._live.discard(conn)
            conn.close()

    def close_connections(self) -> None:
        with self._live_lock:
            live = list(self._live)
        for conn in live:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


def _handler_for(ws: DatabricksWorkspace) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        timeout = 120  # an idle keep-alive connection is closed after this

        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read stats() instead
            pass

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _serve(self) -> None:
            split = urllib.parse.urlsplit(self.path)
            req = _Request(self.command, split.path, urllib.parse.parse_qs(split.query, keep_blank_values=True),
                           split.query, self.headers, self._read_body())
            try:
                reply = ws.handle(req)
            except requests.RequestException as e:
                reply = _json({"error_code": "TEMPORARILY_UNAVAILABLE",
                               "message": f"The tracking backend did not answer: {e}"}, 503)
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            headers = {"Content-Length": str(len(reply.body)), "X-Databricks-Org-Id": ws.workspace_id,
                       **reply.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", required=True, help="URL of the mlflow server started with "
                        f"--default-artifact-root {ARTIFACT_ROOT} --no-serve-artifacts")
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token-lifetime", type=float, default=3600.0)
    args = parser.parse_args()
    ws = DatabricksWorkspace(backend=args.backend, root=args.dir, token_lifetime=args.token_lifetime)
    if args.port:
        ws.port = args.port
    ws.start()
    for name, value in {**ws.env_pat(), **ws.env_oauth()}.items():
        print(f"export {name}={value}", flush=True)
    serve_until_interrupted(ws.stop)


if __name__ == "__main__":
    main()
