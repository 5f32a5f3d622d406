"""What a resource may ask of the operator: the cluster admin's tenancy policy.

Whoever may create one of our resources in a namespace gets a Job there, run by the operator.
Without limits that is the right to run any image as any ServiceAccount of the namespace and to
read any Secret in it, whatever RBAC says about pods and Secrets: the operator would be a
confused deputy. The policy, set in the chart (``policy.*``, the environment variable
``FERRY_POLICY`` as JSON), says what a spec may override; the defaults allow nothing that the
operator's own defaults do not already do. Every refusal is one line starting with the rule's
name (``policy.images: ...``) and ends the resource ``FailedValidation`` before any Job exists.

The checks are pure: `violations` takes the parsed spec, and the labels of the Secrets it names
when the policy asks for them (the only thing the controller reads for the policy).
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Collection, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from kubernetes.utils import parse_quantity
from pydantic import BaseModel, Field, field_validator

from ferry.api.common import JobSettings, S3CredentialsRef, S3Storage, SecretKeyRef, SecretRef, TrackingServer
from ferry.api.kiroframe import KiroframeTarget
from ferry.api.mlflow_import import WebhookSecrets
from ferry.wire import WireModel

# Label values are at most 63 characters; a selector is `key` (any value) or `key=value`.
LabelSelector = str
CREDENTIALS_LABEL = "ferry.dev/credentials=true"
INTERNAL_NAMES = ["localhost", "*.localhost", "metadata", "metadata.google.internal", "instance-data",
                  "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.*"]


class ServiceAccountPolicy(WireModel):
    """Whether spec.job.serviceAccountName may name another ServiceAccount than the chart's."""

    allow_override: bool = Field(
        default=False,
        description="Let spec.job.serviceAccountName choose the Job's ServiceAccount. Off: Jobs run as the "
        "chart's Job ServiceAccount, which may only patch our resources' status.",
    )
    allowed: list[str] = Field(
        default_factory=list,
        description="With allowOverride, the only ServiceAccounts a spec may name; empty: any of the namespace.",
    )


TUNING_KNOBS = [
    "FERRY_WORKERS", "FERRY_HISTORY_WORKERS", "FERRY_METRIC_HISTORY", "FERRY_HTTP_TIMEOUT",
    "FERRY_HTTP_MAX_ATTEMPTS", "FERRY_HTTP_RETRY_SECONDS", "FERRY_HTTP_POOL_SIZE", "FERRY_PROGRESS_INTERVAL", "TZ",
]
"""The engine's tuning knobs: how many workers, how long to wait, how often to report. None of them
changes the code that runs, what it trusts or where it sends credentials."""


class EnvPolicy(WireModel):
    """Which extra environment variables spec.job.env may set."""

    allowed_names: list[str] = Field(
        default_factory=lambda: list(TUNING_KNOBS),
        description="The only names spec.job.env may set. The default lists the engine's tuning knobs; names "
        "that change the code that runs (PYTHONPATH, LD_PRELOAD, PYTHONSTARTUP, ...), what the Job trusts "
        "(REQUESTS_CA_BUNDLE, SSL_CERT_FILE, ...) or where it sends credentials (AWS_ENDPOINT_URL*, "
        "DATABRICKS_HOST, MLFLOW_*, HTTP(S)_PROXY, ...) run only if the admin adds them here by name.",
    )
    allow_value_from: bool = Field(
        default=False,
        description="Let spec.job.env[].valueFrom take values from ConfigMaps, fields and resources, and from "
        "keys of the Secrets the resource already names as credentials. Off: literal values only. A key of "
        "any other Secret is always refused.",
    )


class ResourcePolicy(WireModel):
    """Caps on what a Job may ask of the cluster, like a LimitRange."""

    max_cpu: str | None = Field(
        default=None, description="Most CPU a Job's container may request or be limited to (e.g. \"2\"); unset: no cap."
    )
    max_memory: str | None = Field(
        default=None,
        description="Most memory a Job's container may request or be limited to (e.g. 4Gi); a spec that sets "
        "resources must then set a memory limit. Unset: no cap.",
    )
    allow_node_selector: bool = Field(default=True, description="Let spec.job.nodeSelector choose nodes.")
    allow_tolerations: bool = Field(default=True, description="Let spec.job.tolerations reach tainted nodes.")

    @field_validator("max_cpu", "max_memory", mode="before")
    @classmethod
    def _quantity(cls, value: str | None) -> str | None:
        if value in ("", None):
            return None  # the chart's way of saying "no cap"
        parse_quantity(value)  # ValueError: pydantic reports the field
        return str(value)


class Policy(WireModel):
    """The tenancy policy of one operator installation (chart value ``policy``)."""

    allowed_images: list[str] = Field(
        default_factory=list,
        description="Image prefixes spec.job.image may use (e.g. registry.example.com/ferry/); the Jobs' "
        "default image is always allowed. Empty: no other image.",
    )
    service_accounts: ServiceAccountPolicy = Field(default_factory=ServiceAccountPolicy,
                                                   description="The Job's ServiceAccount.")
    env: EnvPolicy = Field(default_factory=EnvPolicy, description="Extra environment of the Job.")
    credentials_secret_label: LabelSelector | None = Field(
        default=CREDENTIALS_LABEL,
        description="Only Secrets carrying this label (`key` or `key=value`) may be named as credentials, so a "
        "tenant cannot hand a Job an unrelated Secret (Argo CD's model). The operator reads Secrets' metadata "
        "for it, never their data. Empty: any Secret of the namespace.",
    )
    allowed_internal_hosts: list[str] = Field(
        default_factory=list,
        description="Internal hosts (patterns) a tracking URI, kiroframe.url or S3 endpoint may name after all. "
        "Internal: loopback and link-local addresses (the cloud metadata services among them), unspecified and "
        "multicast ones, localhost, the metadata services' names and the Kubernetes API server's "
        "(kubernetes.default.svc, the operator's KUBERNETES_SERVICE_HOST). Empty: none.",
    )
    allowed_tracking_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts (host or host:port, shell patterns like *.mlflow.example.com) tracking URIs may "
        "name. Empty: any. The way to stop Jobs from being used to reach internal addresses.",
    )
    allowed_kiroframe_hosts: list[str] = Field(
        default_factory=list, description="Hosts KiroframeSync's kiroframe.url may name (patterns). Empty: any."
    )
    allowed_s3_endpoints: list[str] = Field(
        default_factory=list,
        description="Hosts an S3 destination's or source's endpoint may name (patterns); a place without an "
        "endpoint (AWS itself) is allowed only if the list holds `s3.amazonaws.com`. Empty: any.",
    )
    allowed_s3_buckets: list[str] = Field(
        default_factory=list, description="Buckets (patterns) an S3 destination or source may name. Empty: any."
    )
    resources: ResourcePolicy = Field(default_factory=ResourcePolicy,
                                      description="Caps on the Job's resources and placement.")

    @field_validator("credentials_secret_label", mode="before")
    @classmethod
    def _label(cls, value: str | None) -> str | None:
        return value or None  # the chart's "" is "no label required"


def violations(spec: BaseModel, policy: Policy, default_image: str,
               secret_labels: Mapping[str, Mapping[str, str] | None] | None = None,
               api_server_hosts: Collection[str] = ()) -> Iterator[str]:
    """Every rule of `policy` the spec breaks, one line each.

    `secret_labels` maps each credentials Secret the spec names to its labels (None: the Secret
    does not exist); it is only consulted when the policy asks for a label. `api_server_hosts` are
    the addresses the operator knows its API server by: internal, like kubernetes.default.svc.
    """
    credentials = dict(credential_secrets(spec))
    job = getattr(spec, "job", None) or JobSettings()
    yield from _job_violations(job, policy, default_image, set(credentials.values()))
    for where, server in _parts(spec, TrackingServer):
        yield from _host_violations("policy.allowedTrackingHosts", f"{where}.trackingUri", server.tracking_uri,
                                    policy.allowed_tracking_hosts)
        yield from _internal_violations(f"{where}.trackingUri", server.tracking_uri, policy, api_server_hosts)
    for where, target in _parts(spec, KiroframeTarget):
        yield from _host_violations("policy.allowedKiroframeHosts", f"{where}.url", target.url,
                                    policy.allowed_kiroframe_hosts)
        yield from _internal_violations(f"{where}.url", target.url, policy, api_server_hosts)
    for where, s3 in _parts(spec, S3Storage):
        yield from _s3_violations(where, s3, policy)
        if s3.endpoint:
            yield from _internal_violations(f"{where}.endpoint", s3.endpoint, policy, api_server_hosts)
    if policy.credentials_secret_label:
        for where, name in credentials.items():
            labels = (secret_labels or {}).get(name)
            if labels is not None and not _has_label(labels, policy.credentials_secret_label):
                yield (f"policy.credentialsSecretLabel: {where} names Secret {name!r}, which does not carry the "
                       f"label {policy.credentials_secret_label}")


def credential_secrets(spec: BaseModel) -> Iterator[tuple[str, str]]:
    """(field path, Secret name) of every Secret the spec names on purpose: credentials, tokens, webhook secrets."""
    for where, ref in _parts(spec, (SecretRef, S3CredentialsRef, SecretKeyRef)):
        yield f"{where}.name", ref.name
    for where, hooks in _parts(spec, WebhookSecrets):
        yield f"{where}.secretName", hooks.secret_name


def _job_violations(job: JobSettings, policy: Policy, default_image: str, credentials: set[str]) -> Iterator[str]:
    if job.image and job.image != default_image and not any(job.image.startswith(p) for p in policy.allowed_images):
        allowed = ", ".join([default_image, *(f"{p}*" for p in policy.allowed_images)])
        yield f"policy.allowedImages: spec.job.image {job.image!r} is not allowed (allowed: {allowed})"
    accounts = policy.service_accounts
    if job.service_account_name:
        if not accounts.allow_override:
            yield ("policy.serviceAccounts: spec.job.serviceAccountName may not be set: Jobs run as the "
                   "operator's Job ServiceAccount")
        elif accounts.allowed and job.service_account_name not in accounts.allowed:
            yield (f"policy.serviceAccounts: spec.job.serviceAccountName {job.service_account_name!r} is not "
                   f"allowed (allowed: {', '.join(accounts.allowed)})")
    for i, var in enumerate(job.env or []):
        if var.name not in policy.env.allowed_names:
            yield (f"policy.env.allowedNames: spec.job.env[{i}] sets {var.name!r}, which is not allowed "
                   f"(allowed: {', '.join(policy.env.allowed_names) or 'none'})")
            continue
        source = var.value_from
        if source is None:
            continue
        where = f"spec.job.env[{i}].valueFrom"
        if not policy.env.allow_value_from:
            yield f"policy.env: {where} is not allowed: literal values only"
            continue
        secret = (source.get("secretKeyRef") or {}).get("name") if isinstance(source, dict) else None
        if secret is not None and secret not in credentials:
            yield (f"policy.env: {where} reads Secret {secret!r}, which the resource does not name as "
                   "credentials")
    yield from _resource_violations(job, policy.resources)


def _resource_violations(job: JobSettings, caps: ResourcePolicy) -> Iterator[str]:
    if job.node_selector and not caps.allow_node_selector:
        yield "policy.resources.allowNodeSelector: spec.job.nodeSelector may not be set"
    if job.tolerations and not caps.allow_tolerations:
        yield "policy.resources.allowTolerations: spec.job.tolerations may not be set"
    if job.resources is None:
        return  # the operator's defaults, which the admin chose
    for resource, cap, rule in (("cpu", caps.max_cpu, "maxCpu"), ("memory", caps.max_memory, "maxMemory")):
        if cap is None:
            continue
        limits, requests = job.resources.limits or {}, job.resources.requests or {}
        for part, values in (("limits", limits), ("requests", requests)):
            value = values.get(resource)
            if value is not None and parse_quantity(value) > parse_quantity(cap):
                yield f"policy.resources.{rule}: spec.job.resources.{part}.{resource} {value} is over {cap}"
        if resource == "memory" and "memory" not in limits:
            yield f"policy.resources.{rule}: spec.job.resources.limits.memory must be set (at most {cap})"


def _s3_violations(where: str, s3: S3Storage, policy: Policy) -> Iterator[str]:
    if policy.allowed_s3_buckets and not _matches(s3.bucket, policy.allowed_s3_buckets):
        yield (f"policy.allowedS3Buckets: {where}.bucket {s3.bucket!r} is not allowed "
               f"(allowed: {', '.join(policy.allowed_s3_buckets)})")
    endpoint = s3.endpoint or "https://s3.amazonaws.com"
    yield from _host_violations("policy.allowedS3Endpoints", f"{where}.endpoint", endpoint,
                                policy.allowed_s3_endpoints)


def _host_violations(rule: str, where: str, url: str, allowed: list[str]) -> Iterator[str]:
    named = _host(url)
    if allowed and named is not None and not _matches_host(named, allowed):
        yield f"{rule}: {where} host {named[0]!r} is not allowed (allowed: {', '.join(allowed)})"


def _internal_violations(where: str, url: str, policy: Policy, api_server_hosts: Collection[str]) -> Iterator[str]:
    named = _host(url)
    why = internal_host(named[0], api_server_hosts) if named is not None else None
    if named is not None and why is not None and not _matches_host(named, policy.allowed_internal_hosts):
        yield (f"policy.allowedInternalHosts: {where} names {named[0]!r}, {why}; Jobs reach it only if the "
               "admin lists it")


def _host(url: str) -> tuple[str, int | None] | None:
    """The host (lower case) and port a URL names; None for a databricks URI, which names a profile
    whose host is the Secret's."""
    if "://" not in url or url.startswith("databricks"):
        return None
    parts = urlsplit(url)
    return (parts.hostname or "").lower(), parts.port


def _matches_host(named: tuple[str, int | None], patterns: list[str]) -> bool:
    """Whether a pattern matches the host, or host:port."""
    host, port = named
    return _matches(host, patterns) or (port is not None and _matches(f"{host}:{port}", patterns))


def internal_host(host: str, api_server_hosts: Collection[str] = ()) -> str | None:
    """Why `host` is internal (a loopback, link-local, ... address, or the API server's), or None."""
    if host in {h.lower() for h in api_server_hosts}:
        return "the Kubernetes API server"
    if _matches(host, INTERNAL_NAMES):
        return "a name of this machine, the metadata service or the Kubernetes API server"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    address = mapped or address
    for kind, said in (("loopback", "a loopback"), ("link_local", "a link-local"), ("unspecified", "an unspecified"),
                       ("multicast", "a multicast"), ("reserved", "a reserved")):
        if getattr(address, f"is_{kind}"):
            return f"{said} address"
    return None


def _matches(value: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(value, p.lower()) for p in patterns)


def _has_label(labels: Mapping[str, str], selector: LabelSelector) -> bool:
    key, _, value = selector.partition("=")
    return key in labels and (not value or labels[key] == value)


def _parts(model: Any, types: type | tuple[type, ...], where: str = "spec") -> Iterator[tuple[str, Any]]:
    """Every sub-model of `model` of one of `types`, with its field path (camelCase, as the user wrote it)."""
    if isinstance(model, types):
        yield where, model
        return
    if isinstance(model, BaseModel):
        for name, info in type(model).model_fields.items():
            yield from _parts(getattr(model, name), types, f"{where}.{info.alias or name}")
    elif isinstance(model, list):
        for i, item in enumerate(model):
            yield from _parts(item, types, f"{where}[{i}]")
