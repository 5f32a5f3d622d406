"""The few Kubernetes calls the controller makes, as plain dicts in the API's own camelCase.

Responses are read raw (``_preload_content=False``) and parsed as JSON: cheaper than the client's
model classes and the same shape kopf hands to handlers, so one set of pure functions serves both.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_fixed

from ferry.api import GROUP, VERSION, Kind
from ferry.controller.jobs import KIND_LABEL, NAME_LABEL
from ferry.kube import load_config, patch_status, read_body

METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
REPORTING_COMPONENT = "mlflow-ferry"  # the "From" column of `kubectl describe`
REPORTING_INSTANCE = socket.gethostname()  # the operator's pod
EVENT_NAME_PREFIX = "ferry-"
EVENT_TIMEOUT_SECONDS = 10.0
log = logging.getLogger("ferry.controller")


class StatusNotServed(Exception):
    """The object exists but its status subresource is not served yet."""


def _json(response: Any) -> dict[str, Any]:
    return json.loads(read_body(response))


def no_such_object(err: ApiException) -> bool:
    """A 404 that says the object does not exist, not that its kind is not served.

    A kube-apiserver that has just started answers ``404 page not found`` for every custom resource
    until it has loaded the CRDs; taking that for a deleted object would drop a result.
    """
    try:
        return err.status == 404 and json.loads(err.body).get("reason") == "NotFound"
    except (TypeError, ValueError, AttributeError):
        return False


class Kube:
    def __init__(self, client: kubernetes.client.ApiClient | None = None) -> None:
        self.client = client or load_config()
        self.batch = kubernetes.client.BatchV1Api(self.client)
        self.core = kubernetes.client.CoreV1Api(self.client)
        self.custom = kubernetes.client.CustomObjectsApi(self.client)

    # --- events -------------------------------------------------------------------------------
    def post_event(self, reference: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """Post a core/v1 Event about one of our objects, now; best effort.

        Sent by the handler itself, not queued for kopf's background poster: a result decided while
        kopf is stopping (its watches lost, `ferry.supervisor`) would be dropped with the
        queue. A refused or unreachable API server costs a WARNING line, never the status patch
        or Job mark that follows.
        """
        now = datetime.now(UTC).isoformat()
        body = {
            "metadata": {"namespace": reference["namespace"], "generateName": EVENT_NAME_PREFIX},
            "type": type_, "reason": reason, "message": message, "action": reason,
            "involvedObject": reference, "source": {"component": REPORTING_COMPONENT},
            "reportingComponent": REPORTING_COMPONENT, "reportingInstance": REPORTING_INSTANCE,
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        }  # fmt: skip
        try:
            read_body(self.core.create_namespaced_event(reference["namespace"], body, _preload_content=False,
                                                        _request_timeout=EVENT_TIMEOUT_SECONDS))
        except (ApiException, urllib3.exceptions.HTTPError) as err:
            log.warning("could not post Event %s on %s/%s: %s", reason, reference.get("kind"), reference.get("name"),
                        getattr(err, "reason", None) or err)

    # --- discovery ------------------------------------------------------------------------------
    def unserved(self, kinds: Iterable[Kind]) -> list[Kind]:
        """Those of `kinds` the API server does not serve: their CRD is not installed, or not loaded yet."""
        try:
            listed = _json(self.custom.get_api_resources(GROUP, VERSION, _preload_content=False))
        except ApiException as err:
            if err.status == 404:  # not one CRD of the group is served
                return list(kinds)
            raise
        served = {resource["name"] for resource in listed.get("resources", [])}
        return [kind for kind in kinds if kind.plural not in served]

    # --- secrets (metadata only) ---------------------------------------------------------------
    def secret_labels(self, namespace: str, name: str) -> dict[str, str] | None:
        """The labels of a Secret, None if it does not exist. Asked as PartialObjectMetadata, so
        the Secret's data never reaches the operator."""
        try:
            response = self.core.read_namespaced_secret(name, namespace, _preload_content=False,
                                                        _headers={"Accept": METADATA_ONLY})
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return dict(_json(response).get("metadata", {}).get("labels") or {})

    # --- jobs ---------------------------------------------------------------------------------
    def create_job(self, job: dict[str, Any]) -> bool:
        """True if created, False if a Job of that name already exists (started before)."""
        try:
            read_body(self.batch.create_namespaced_job(job["metadata"]["namespace"], job, _preload_content=False))
        except ApiException as err:
            if err.status == 409:
                return False
            raise
        return True

    def read_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return _json(self.batch.read_namespaced_job(name, namespace, _preload_content=False))
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def jobs_of(self, kind: Kind, namespace: str, name: str, uid: str) -> list[dict[str, Any]]:
        selector = f"{KIND_LABEL}={kind.kind},{NAME_LABEL}={name[:63]}"
        items = _json(
            self.batch.list_namespaced_job(namespace, label_selector=selector, _preload_content=False)
        )["items"]
        return [j for j in items if any(o.get("uid") == uid for o in j["metadata"].get("ownerReferences", []))]

    def annotate_job(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        try:
            read_body(self.batch.patch_namespaced_job(name, namespace, {"metadata": {"annotations": annotations}},
                                                      _preload_content=False))
        except ApiException as err:
            if err.status != 404:
                raise

    def delete_job(self, namespace: str, name: str) -> None:
        try:
            read_body(self.batch.delete_namespaced_job(name, namespace, propagation_policy="Background",
                                                       _preload_content=False))
        except ApiException as err:
            if err.status != 404:
                raise

    def pods_of_job(self, namespace: str, job_name: str) -> list[dict[str, Any]]:
        return _json(
            self.core.list_namespaced_pod(namespace, label_selector=f"job-name={job_name}", _preload_content=False)
        )["items"]

    # --- our resources ------------------------------------------------------------------------
    def get_resource(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, None if it does not exist; an API server not serving its kind yet raises."""
        try:
            return _json(
                self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, kind.plural, name, _preload_content=False
                )
            )
        except ApiException as err:
            if no_such_object(err):
                return None
            raise

    def remove_finalizer(self, kind: Kind, namespace: str, name: str, finalizers: list[str], finalizer: str) -> None:
        """Remove one finalizer, and only if it is still where it was seen (a JSON patch ``test``).

        A merge patch would rewrite the whole list and could drop a finalizer someone else added
        meanwhile; if the list changed, the patch is refused (422) and the next watch event retries.
        """
        at = f"/metadata/finalizers/{finalizers.index(finalizer)}"
        try:
            read_body(self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, kind.plural, name,
                [{"op": "test", "path": at, "value": finalizer}, {"op": "remove", "path": at}],
                _content_type="application/json-patch+json", _preload_content=False,
            ))  # fmt: skip
        except ApiException as err:
            if err.status not in (404, 422):
                raise

    @retry(retry=retry_if_exception_type(StatusNotServed), stop=stop_after_attempt(6), wait=wait_fixed(0.5),
           reraise=True)
    def patch_status(self, kind: Kind, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Merge-patch ``status`` (a None value removes a field); a vanished resource is not an error.

        Right after a CRD is (re)installed the API server may answer 404 for ``/status`` of an
        object that exists; that is retried briefly instead of losing the update.
        """
        try:
            patch_status(self.custom, kind, namespace, name, status)
        except ApiException as err:
            if err.status != 404:
                raise
            if self.get_resource(kind, namespace, name) is not None:
                raise StatusNotServed(f"{kind.plural}/{name}/status answered 404") from err
