"""What a schema cannot say about a spec, checked before any Job exists.

Each problem is one line naming the field (``spec.options.stages: ...``), collected rather than
stopping at the first, so the user fixes everything in one edit. The pydantic models re-check the
schema too: the operator may meet objects stored before a CRD upgrade.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from ferry.api import Kind
from ferry.api.common import (
    DATABRICKS_CONFIG_KEY,
    S3_ACCESS_KEY_ID,
    S3_SECRET_ACCESS_KEY,
    S3_SESSION_TOKEN,
    JobSettings,
    PvcLocation,
    S3Storage,
    ScheduleSpec,
    TrackingServer,
    is_databricks,
)
from ferry.api.export import MlflowExportSpec
from ferry.api.job import ENV_VAR, KIROFRAME_TOKEN_ENV
from ferry.api.kiroframe import KiroframeSyncSpec
from ferry.api.mirror import MlflowMirrorSpec
from ferry.api.mlflow_import import MlflowImportSpec
from ferry.controller.cron import cron_error, zone_error
from ferry.options import Renames
from ferry.urls import HTTP_URL, TRACKING_URI, URL_RULE

QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[KMGTPE]i|[numkMGTPE])?$")
RESERVED_ENV = {ENV_VAR, KIROFRAME_TOKEN_ENV, "HOME", "TMPDIR"}
S3_KEYS_ENV = (S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, S3_SESSION_TOKEN)
URL_PATTERNS = {HTTP_URL, TRACKING_URI}
DATABRICKS_PROFILE = re.compile(r"^[A-Za-z0-9._-]*$")  # a profile: a section name of the configuration file


def validate(kind: Kind, spec: dict[str, Any]) -> tuple[BaseModel | None, list[str]]:
    """The parsed spec and every problem found; a spec with problems gets no Job."""
    try:
        model = kind.spec.model_validate(spec)
    except ValidationError as err:
        return None, [_schema_message(e) for e in err.errors()]
    return model, list(_semantic_errors(model))


def _schema_message(error: Any) -> str:
    where = ".".join(str(part) for part in ("spec", *error["loc"]))
    if error["type"] == "string_pattern_mismatch" and (error.get("ctx") or {}).get("pattern") in URL_PATTERNS:
        value = str(error["input"])
        said = list(_url_errors(where, value)) if "://" in value else []
        also = " (or databricks, databricks://<profile>)" if error["ctx"]["pattern"] == TRACKING_URI else ""
        return said[0] if said else f"{where}: '{_redact(value)}' is not {URL_RULE}{also}"
    return f"{where}: {error['msg']}"


def _semantic_errors(spec: BaseModel) -> Iterator[str]:
    if isinstance(spec, MlflowExportSpec):
        yield from _server_errors("spec.source", spec.source)
        yield from _export_errors(spec)
    elif isinstance(spec, MlflowImportSpec):
        yield from _server_errors("spec.destination", spec.destination)
        yield from _import_errors(spec)
    elif isinstance(spec, KiroframeSyncSpec):
        yield from _server_errors("spec.source", spec.source)
        yield from _url_errors("spec.kiroframe.url", spec.kiroframe.url)
        yield from _schedule_errors(spec, spec.schedule)
    elif isinstance(spec, MlflowMirrorSpec):
        yield from _server_errors("spec.source", spec.source)
        yield from _server_errors("spec.destination", spec.destination)
        yield from _mirror_errors(spec)
        yield from _schedule_errors(spec, spec.schedule)
    job = getattr(spec, "job", None)
    if job is not None:
        yield from _job_errors(job)
        yield from _s3_env_errors(spec, job)


def _server_errors(where: str, server: TrackingServer) -> Iterator[str]:
    if is_databricks(server.tracking_uri):
        yield from _databricks_errors(where, server)
        return
    yield from _url_errors(f"{where}.trackingUri", server.tracking_uri)


def _databricks_errors(where: str, server: TrackingServer) -> Iterator[str]:
    """A workspace needs its sign-in from a Secret; the profile form names a profile and nothing else.

    Whether the Secret holds usable keys is for the Job to find out (it says so in one line within
    seconds): the operator never reads a Secret's data.
    """
    profile = server.tracking_uri.removeprefix("databricks").removeprefix("://")
    if not DATABRICKS_PROFILE.match(profile):
        yield (f"{where}.trackingUri: '{server.tracking_uri}' is not databricks or databricks://<profile> "
               "(secret-scope URIs work only inside a Databricks notebook)")
    if server.credentials_secret is None:
        yield (f"{where}.credentialsSecret: required for a Databricks workspace: a Secret with DATABRICKS_HOST and "
               "DATABRICKS_TOKEN (or DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET), or with a "
               f"'{DATABRICKS_CONFIG_KEY}' configuration file")


def _url_errors(where: str, url: str) -> Iterator[str]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        yield f"{where}: '{_redact(url)}' is not a URL ({err})"
        return
    if parts.username or parts.password:
        yield f"{where}: credentials must not be part of the URL; put them in a Secret"
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        yield f"{where}: a query or fragment is not allowed; the URL is {URL_RULE}"
    if not parts.hostname:
        yield f"{where}: '{_redact(url)}' names no host"
    elif port == 0:
        yield f"{where}: port 0 is not a port"


def _redact(url: str) -> str:
    """A URL as it may appear in a message: anything before '@' (user:password) is cut."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rsplit('@', 1)[-1]}" if sep else url


def _path_errors(where: str, pvc: PvcLocation) -> Iterator[str]:
    if ".." in pvc.sub_path.split("/"):
        yield f"{where}.subPath: '..' is not allowed; the path must stay inside the claim"


def _s3_errors(where: str, s3: S3Storage) -> Iterator[str]:
    if ".." in s3.prefix.split("/"):
        yield f"{where}.prefix: '..' is not allowed; the prefix names a place in the bucket"
    if s3.endpoint is not None:
        yield from _url_errors(f"{where}.endpoint", s3.endpoint)


def _one_of(where: str, places: dict[str, object]) -> Iterator[str]:
    """Exactly one of `places` (wire names) is set; the message names them all."""
    if sum(place is not None for place in places.values()) != 1:
        names = list(places)
        yield f"{where}: set exactly one of {', '.join(names[:-1])} and {names[-1]}"


def _s3_env_errors(spec: BaseModel, job: JobSettings) -> Iterator[str]:
    """A bucket's Secret sets its three variables; spec.job.env setting them too would be ambiguous."""
    for where, s3 in _buckets(spec):
        if s3.credentials_secret is not None:
            for var in job.env or []:
                if var.name in S3_KEYS_ENV:
                    yield f"spec.job.env: {var.name} comes from {where}.credentialsSecret"


def _buckets(spec: BaseModel) -> Iterator[tuple[str, S3Storage]]:
    if isinstance(spec, MlflowExportSpec) and spec.destination.s3 is not None:
        yield "spec.destination.s3", spec.destination.s3
    if isinstance(spec, MlflowImportSpec) and spec.source.s3 is not None:
        yield "spec.source.s3", spec.source.s3


def _schedule_errors(spec: ScheduleSpec, schedule: str | None) -> Iterator[str]:
    if schedule is not None and (problem := cron_error(schedule)):
        yield f"spec.schedule: {problem}"
    if spec.time_zone is not None and (problem := zone_error(spec.time_zone)):
        yield f"spec.timeZone: {problem}"


def _export_errors(spec: MlflowExportSpec) -> Iterator[str]:
    if spec.objects.empty:
        kinds = [info.alias or name for name, info in type(spec.objects).model_fields.items()]
        yield f"spec.objects: names nothing to export; list {', '.join(kinds[:-1])} or {kinds[-1]}"
    options = spec.options
    if options is not None:
        if options.stages and options.versions:
            yield "spec.options: stages and versions exclude each other; set one"
        for field, value in (("runStartTime", options.run_start_time), ("tracesSince", options.traces_since)):
            if value is not None and not _is_time(value):
                yield f"spec.options.{field}: '{value}' is not an ISO 8601 time or epoch ms"
        if options.wanted and not is_databricks(spec.source.tracking_uri):
            yield ("spec.options: notebookFormats and exportPermissions apply only to a Databricks workspace "
                   "(spec.source.trackingUri databricks or databricks://<profile>)")
    destination = spec.destination
    yield from _one_of("spec.destination", {"pvc": destination.pvc, "s3": destination.s3})
    if destination.pvc is not None:
        yield from _path_errors("spec.destination.pvc", destination.pvc)
    if destination.s3 is not None:
        yield from _s3_errors("spec.destination.s3", destination.s3)
    yield from _schedule_errors(spec, spec.schedule)
    if spec.schedule is None:
        if spec.keep is not None:
            yield "spec.keep: only a scheduled export keeps several exports; set schedule or remove keep"
        if spec.time_zone is not None:
            yield "spec.timeZone: only meaningful with spec.schedule"


def _is_time(value: str) -> bool:
    if value.isdigit():
        return True
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _import_errors(spec: MlflowImportSpec) -> Iterator[str]:
    source = spec.source
    yield from _one_of("spec.source", {"exportRef": source.export_ref, "pvc": source.pvc, "s3": source.s3})
    if source.pvc is not None:
        yield from _path_errors("spec.source.pvc", source.pvc)
    if source.s3 is not None:
        yield from _s3_errors("spec.source.s3", source.s3)
    if spec.target is not None and spec.target.renames is not None:
        yield from _rename_errors("spec.target.renames", spec.target.renames)
    if spec.options is not None and spec.options.wanted and not is_databricks(spec.destination.tracking_uri):
        yield ("spec.options: importPermissions and dstNotebookDir apply only to a Databricks workspace "
               "(spec.destination.trackingUri databricks or databricks://<profile>)")


def _rename_errors(where: str, renames: Renames) -> Iterator[str]:
    for what, mapping in (("experiments", renames.experiments), ("models", renames.models)):
        for old, new in mapping.items():
            if not old.strip() or not new.strip():
                yield f"{where}.{what}: '{old}' -> '{new}' has an empty name"


def _mirror_errors(spec: MlflowMirrorSpec) -> Iterator[str]:
    if _same_server(spec.source.tracking_uri, spec.destination.tracking_uri):
        yield (f"spec.destination.trackingUri: '{_redact(spec.destination.tracking_uri)}' is the source; a mirror "
               "copies to another server")
    if spec.renames is not None:
        yield from _rename_errors("spec.renames", spec.renames)


def _same_server(one: str, other: str) -> bool:
    """The same tracking URI, up to the case of scheme and host, a default port and a trailing '/'."""
    return _normal_uri(one) == _normal_uri(other)


def _normal_uri(uri: str) -> str:
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return uri
    if not parts.netloc:  # databricks, databricks://<profile>
        return uri.rstrip("/")
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    host = (parts.hostname or "") + (f":{port}" if port is not None and port != default else "")
    return f"{parts.scheme.lower()}://{host}{parts.path.rstrip('/')}"


def _job_errors(job: JobSettings) -> Iterator[str]:
    for section in ("limits", "requests"):
        for resource, quantity in ((getattr(job.resources, section, None) or {}).items()):
            if not QUANTITY.match(str(quantity)):
                yield f"spec.job.resources.{section}.{resource}: '{quantity}' is not a quantity (e.g. 500m, 1Gi)"
    for var in job.env or []:
        if var.name in RESERVED_ENV:
            yield f"spec.job.env: {var.name} is set by the operator"
