"""A run's (or logged model's) artifacts: list, download and upload, wherever they live.

Four kinds of place an ``artifact_uri`` can point to:

* ``mlflow-artifacts:/...`` or ``http(s)://.../api/2.0/mlflow-artifacts/artifacts/...`` — served by
  the tracking server (``mlflow server --serve-artifacts``, the usual deployment): streamed
  through its REST endpoints with the client's credentials and pooled sessions;
* a local path or ``file://`` URI — a server started without artifact serving, on this machine
  or a shared volume: plain file copies;
* ``s3://bucket/prefix`` — a server started with ``--no-serve-artifacts`` on S3: read and written
  with boto3 directly (`ferry.tracking.s3`), from the environment variables the MLflow client reads;
* ``dbfs:/databricks/mlflow-tracking/...`` in a Databricks workspace — listed through the tracking
  API and moved through the signed cloud-storage URLs the workspace hands out per file;
* anything else (``gs://``, ``wasbs://`` ...) — MLflow's own artifact repositories, which read their
  credentials from the environment the way the MLflow client does.

Every download is written to a temporary name and renamed, so a half-written file never looks
finished to a resumed export.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlparse

import requests

from ferry.errors import NotFoundError
from ferry.tracking.client import TrackingClient
from ferry.tracking.transport import JsonDict, Transport

SERVED_ROOT = "api/2.0/mlflow-artifacts/artifacts"
CHUNK = 1 << 20


@dataclass(frozen=True)
class FileInfo:
    path: str  # relative to the artifact root, '/'-separated
    is_dir: bool
    file_size: int | None = None


class _Backend(Protocol):
    def list(self, path: str) -> list[FileInfo]: ...
    def download(self, path: str, dest: Path) -> int: ...
    def upload(self, src: Path, path: str) -> int: ...


class ArtifactStore:
    """The artifacts under one artifact root URI, e.g. a run's ``info.artifact_uri``."""

    def __init__(self, client: TrackingClient, artifact_uri: str) -> None:
        self.uri = artifact_uri
        self._backend = _backend_for(client, artifact_uri)

    def list(self, path: str = "") -> list[FileInfo]:
        return self._backend.list(path.strip("/"))

    def walk(self, path: str = "") -> Iterator[FileInfo]:
        """Every file below `path`, depth first."""
        for info in self.list(path):
            if info.is_dir:
                yield from self.walk(info.path)
            else:
                yield info

    def download_tree(self, dest: Path, path: str = "") -> tuple[int, int]:
        """Copy every file below `path` into `dest`, keeping the layout; returns (files, bytes)."""
        files = nbytes = 0
        for info in self.walk(path):
            rel = info.path[len(path.strip("/")):].lstrip("/") if path else info.path
            nbytes += self.download_file(info.path, dest / rel)
            files += 1
        return files, nbytes

    def download_file(self, path: str, dest: Path) -> int:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        os.close(fd)
        try:
            nbytes = self._backend.download(path, Path(tmp))
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return nbytes

    def read_bytes(self, path: str) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / "f"
            self._backend.download(path, target)
            return target.read_bytes()

    def upload_tree(self, src: Path, path: str = "") -> tuple[int, int]:
        """Upload every file below local `src` under artifact `path`; returns (files, bytes)."""
        files = nbytes = 0
        for local in sorted(p for p in src.rglob("*") if p.is_file()):
            rel = local.relative_to(src).as_posix()
            nbytes += self.upload_file(local, f"{path.strip('/')}/{rel}" if path.strip("/") else rel)
            files += 1
        return files, nbytes

    def upload_file(self, src: Path, path: str) -> int:
        return self._backend.upload(src, path.strip("/"))

    def upload_bytes(self, data: bytes, path: str) -> int:
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / Path(path).name
            local.write_bytes(data)
            return self.upload_file(local, path)


def _backend_for(client: TrackingClient, uri: str) -> _Backend:
    parsed = urlparse(uri)
    if parsed.scheme == "mlflow-artifacts":
        transport = client.transport
        if parsed.netloc:
            base = urlparse(client.uri)
            transport = Transport(f"{base.scheme}://{parsed.netloc}", client.transport.settings)
        return _Served(transport, parsed.path.strip("/"))
    if parsed.scheme in ("http", "https") and f"/{SERVED_ROOT}" in parsed.path:
        prefix, _, root = uri.partition(f"/{SERVED_ROOT}")
        return _Served(Transport(prefix, client.transport.settings), root.strip("/"))
    if parsed.scheme in ("", "file"):
        return _Local(Path(parsed.path if parsed.scheme else uri))
    if parsed.scheme == "dbfs" and client.workspace is not None:
        return _WorkspaceRunArtifacts(client, uri)
    if parsed.scheme == "s3":
        from ferry.tracking.s3 import S3Artifacts  # boto3 is loaded only for s3:// roots

        return S3Artifacts(uri)
    return _Repository(uri)


class _Served:
    def __init__(self, transport: Transport, root: str) -> None:
        self.transport = transport
        self.root = root

    def _full(self, path: str) -> str:
        return f"{self.root}/{path}".strip("/") if path else self.root

    def list(self, path: str) -> list[FileInfo]:
        answer = self.transport.call("GET", SERVED_ROOT, params={"path": self._full(path)})
        infos = [FileInfo(f"{path}/{f['path']}" if path else f["path"], bool(f.get("is_dir")),
                          int(f["file_size"]) if "file_size" in f else None)
                 for f in answer.get("files", [])]
        if len(infos) == 1 and not infos[0].is_dir and path and infos[0].path == f"{path}/{Path(path).name}":
            return []  # the server lists a file as itself; a file has no children
        return infos

    def download(self, path: str, dest: Path) -> int:
        return _save(self.transport.request("GET", f"{SERVED_ROOT}/{quote(self._full(path))}", stream=True,
                                            what=f"artifact '{path}'"), dest)

    def upload(self, src: Path, path: str) -> int:
        self.transport.request("PUT", f"{SERVED_ROOT}/{quote(self._full(path))}", body=src)
        return src.stat().st_size


class _WorkspaceRunArtifacts:
    """A run's artifacts in a Databricks workspace, which keeps them in its cloud storage.

    The tracking API lists them (``artifacts/list``) and hands out one signed URL per file
    (``artifacts/credentials-for-read`` / ``-for-write``: an AWS presigned URL, an Azure SAS URI or
    a GCP signed URL). The signed URL is the credential: it is fetched without our sign-in headers,
    with the headers the workspace asks for.
    """

    PREFIX = "dbfs:/databricks/mlflow-tracking/"

    def __init__(self, client: TrackingClient, uri: str) -> None:
        parts = uri.removeprefix(self.PREFIX).strip("/").split("/")
        if not uri.startswith(self.PREFIX) or len(parts) < 3 or parts[2] != "artifacts":
            raise NotFoundError(f"artifact location '{uri}' is not a run's artifact root in the Databricks "
                                f"workspace at {client.uri} (logged-model and DBFS-path artifacts are not supported)")
        self.client = client
        self.run_id = parts[1]
        self.below = "/".join(parts[3:])  # a model version's source is a directory of the run's artifacts
        self.signed = Transport(client.uri, client.transport.settings, auth=_Unsigned(), credentials="a signed URL")

    def _in_run(self, path: str) -> str:
        return f"{self.below}/{path}".strip("/") if self.below else path

    def list(self, path: str) -> list[FileInfo]:
        infos: list[FileInfo] = []
        token: str | None = None
        while True:
            params = {"run_id": self.run_id, "path": self._in_run(path), **({"page_token": token} if token else {})}
            answer = self.client.call("GET", "artifacts/list", params=params, what=f"run '{self.run_id}'")
            infos += [FileInfo(f["path"].removeprefix(self.below).lstrip("/") if self.below else f["path"],
                               bool(f.get("is_dir")), int(f["file_size"]) if "file_size" in f else None)
                      for f in answer.get("files", [])]
            token = answer.get("next_page_token")
            if not token:
                break
        if len(infos) == 1 and not infos[0].is_dir and infos[0].path == path:
            return []  # a file lists as itself; a file has no children
        return infos

    def download(self, path: str, dest: Path) -> int:
        credential = self._credential("read", path)
        return _save(self.signed.request("GET", credential["signed_uri"], headers=_headers(credential), stream=True,
                                         what=f"artifact '{path}' of run '{self.run_id}'"), dest)

    def upload(self, src: Path, path: str) -> int:
        credential = self._credential("write", path)
        headers = _headers(credential)
        if credential.get("type") == "AZURE_SAS_URI":
            headers.setdefault("x-ms-blob-type", "BlockBlob")  # one Put Blob; Azure asks for the type
        elif credential.get("type") not in (None, "AWS_PRESIGNED_URL", "GCP_SIGNED_URL"):
            raise NotFoundError(f"the Databricks workspace at {self.client.uri} hands out "
                                f"{credential.get('type')} credentials for writing artifacts, which are not supported")
        self.signed.request("PUT", credential["signed_uri"], headers=headers, body=src,
                            what=f"artifact '{path}' of run '{self.run_id}'")
        return src.stat().st_size

    def _credential(self, kind: str, path: str) -> JsonDict:
        in_run = self._in_run(path)
        answer = self.client.call("GET", f"artifacts/credentials-for-{kind}",
                                  params={"run_id": self.run_id, "path": in_run}, what=f"run '{self.run_id}'")
        for credential in answer.get("credential_infos", []):
            if credential.get("path") == in_run:
                return dict(credential)
        raise NotFoundError(f"the Databricks workspace at {self.client.uri} handed out no {kind} credential for "
                            f"artifact '{path}' of run '{self.run_id}'")


class _Unsigned(requests.auth.AuthBase):
    """No sign-in headers: a signed URL carries its own credential and may reject any other."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


def _save(response: requests.Response, dest: Path) -> int:
    """A streamed answer's body into `dest`; the number of bytes."""
    nbytes = 0
    with response, dest.open("wb") as fh:
        for chunk in response.iter_content(CHUNK):
            fh.write(chunk)
            nbytes += len(chunk)
    return nbytes


def _headers(credential: JsonDict) -> dict[str, str]:
    return {h["name"]: h["value"] for h in credential.get("headers", []) if "name" in h}


class _Local:
    def __init__(self, root: Path) -> None:
        self.root = root

    def list(self, path: str) -> list[FileInfo]:
        where = self.root / path
        if not where.is_dir():
            return []
        return [FileInfo(f"{path}/{p.name}" if path else p.name, p.is_dir(), None if p.is_dir() else p.stat().st_size)
                for p in sorted(where.iterdir())]

    def download(self, path: str, dest: Path) -> int:
        src = self.root / path
        if not src.is_file():
            raise NotFoundError(f"artifact '{path}' not found under {self.root}")
        shutil.copyfile(src, dest)
        return dest.stat().st_size

    def upload(self, src: Path, path: str) -> int:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        return src.stat().st_size


class _Repository:
    """MLflow's artifact repository for schemes we do not speak ourselves (gs, wasbs, ...)."""

    def __init__(self, uri: str) -> None:
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        self.repo: Any = get_artifact_repository(uri)

    def list(self, path: str) -> list[FileInfo]:
        return [FileInfo(f.path, f.is_dir, f.file_size) for f in self.repo.list_artifacts(path or None)]

    def download(self, path: str, dest: Path) -> int:
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(self.repo.download_artifacts(path, dst_path=tmp))
            shutil.copyfile(local, dest)
        return dest.stat().st_size

    def upload(self, src: Path, path: str) -> int:
        parent = str(Path(path).parent) if "/" in path else None
        if Path(path).name == src.name:
            self.repo.log_artifact(str(src), parent)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                renamed = Path(tmp) / Path(path).name
                shutil.copyfile(src, renamed)
                self.repo.log_artifact(str(renamed), parent)
        return src.stat().st_size
