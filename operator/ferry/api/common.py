"""Building blocks the specs of the three custom resources share: servers, volumes, Job settings, schedules.

Every field is camelCase on the wire (``alias_generator``) and snake_case in Python, so the same
model validates what a user applied and renders the CRD schema. Status parts: `ferry.api.status`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from ferry.storage.location import PREFIX, S3Location
from ferry.urls import TRACKING_URI, URL_RULE
from ferry.wire import WireModel

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# A relative path inside a volume (Go's RE2 has no look-ahead: the operator refuses `..` itself).
RELATIVE_PATH = r"^([^/].*)?$"

PRESERVE_UNKNOWN = {"x-kubernetes-preserve-unknown-fields": True}


ApiModel = WireModel


Name = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)]


class SecretRef(ApiModel):
    """A Secret in the resource's namespace whose keys become the Job's environment."""

    name: Name = Field(
        description="Name of the Secret in the resource's namespace; each of its keys becomes an environment "
        "variable of the Job's container (envFrom)."
    )


class SecretKeyRef(ApiModel):
    """One key of a Secret in the resource's namespace."""

    name: Name = Field(description="Name of the Secret in the resource's namespace.")
    key: str = Field(
        default="token", min_length=1, max_length=253, description="Key inside the Secret whose value is used."
    )


# A Databricks workspace's sign-in, read from the credentials Secret: DATABRICKS_HOST with
# DATABRICKS_TOKEN or with DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET as environment
# variables, or a configuration file (for databricks://<profile>) under this key, which the Job
# mounts and names in DATABRICKS_CONFIG_FILE.
DATABRICKS_CONFIG_KEY = ".databrickscfg"
DATABRICKS_CONFIG_DIR = "/etc/ferry/databricks"


def is_databricks(uri: str) -> bool:
    return uri == "databricks" or uri.startswith("databricks://")


class TrackingServer(ApiModel):
    """An MLflow tracking server or a Databricks workspace; credentials only by reference, never inline."""

    tracking_uri: str = Field(
        pattern=TRACKING_URI,
        max_length=2048,
        description=f"MLflow tracking URI: {URL_RULE}; or databricks / databricks://<profile> "
        "for a Databricks workspace (workspace model registry; Unity Catalog is not supported). "
        "No credentials in it: use credentialsSecret.",
    )
    credentials_secret: SecretRef | None = Field(
        default=None,
        description="Secret whose keys become the Job's environment (envFrom): MLFLOW_TRACKING_TOKEN, or "
        "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD. For a Databricks workspace (required): "
        "DATABRICKS_HOST with DATABRICKS_TOKEN, or with DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET "
        f"(OAuth machine-to-machine), or a key '{DATABRICKS_CONFIG_KEY}' holding a configuration file whose "
        "profile databricks://<profile> names (the Job mounts it and sets DATABRICKS_CONFIG_FILE). "
        "Unset: no credentials.",
    )


class PvcLocation(ApiModel):
    """A directory on a PersistentVolumeClaim in the resource's namespace."""

    claim_name: Name = Field(
        description="Name of the PersistentVolumeClaim in the resource's namespace; the Job mounts it at /data."
    )
    sub_path: str = Field(
        default="",
        max_length=1024,
        pattern=RELATIVE_PATH,
        description="Directory inside the claim (relative, no '..'); empty means the claim's root.",
    )


# The keys of an S3 credentials Secret: the names the AWS SDKs read from the environment.
S3_ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID"
S3_SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY"
S3_SESSION_TOKEN = "AWS_SESSION_TOKEN"  # optional: only temporary credentials have one


class S3CredentialsRef(ApiModel):
    """A Secret holding the keys to a bucket, read by key (never the whole Secret)."""

    name: Name = Field(
        description=f"Name of the Secret in the resource's namespace. Keys: {S3_ACCESS_KEY_ID} and "
        f"{S3_SECRET_ACCESS_KEY}, and {S3_SESSION_TOKEN} for temporary credentials (optional); the Job gets "
        "these three keys as environment variables of the same names and nothing else of the Secret."
    )


class S3Storage(S3Location):
    """A prefix in an S3 (or S3-compatible) bucket and the Secret with the keys to it."""

    prefix: str = Field(
        default="", max_length=1024, pattern=PREFIX,
        description="Key prefix inside the bucket (no leading or trailing '/'); empty means the bucket's root. "
        "A scheduled export writes each run under <prefix>/<name>-<scheduled time>.",
    )
    insecure_skip_tls_verify: bool = Field(
        default=False, alias="insecureSkipTLSVerify",
        description="Do not verify the endpoint's TLS certificate (a self-signed test endpoint). Prefer a CA "
        "bundle (AWS_CA_BUNDLE in spec.job.env).",
    )
    credentials_secret: S3CredentialsRef | None = Field(
        default=None,
        description=f"Secret with the keys {S3_ACCESS_KEY_ID}, {S3_SECRET_ACCESS_KEY} and optionally "
        f"{S3_SESSION_TOKEN}. They take precedence over variables of the same names in the tracking server's "
        "credentialsSecret. Unset: the pod's own AWS credentials (e.g. a ServiceAccount with an IAM role).",
    )

    def location(self, sub_prefix: str = "") -> S3Location:
        """The place alone, without the Secret (what a Job's engine is handed), `sub_prefix` below the prefix."""
        place = S3Location(bucket=self.bucket, prefix=self.prefix, endpoint=self.endpoint, region=self.region,
                           insecure_skip_tls_verify=self.insecure_skip_tls_verify)
        return place.child(sub_prefix) if sub_prefix else place


class Toleration(ApiModel):
    """A toleration of the Job's pod (Kubernetes Toleration): lets it schedule onto nodes with a matching taint."""

    key: str | None = Field(
        default=None, description="Taint key the toleration matches; empty with operator Exists matches every taint."
    )
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None,
        description="How key and value are compared: Exists (any value) or Equal (value must match). "
        "Unset: Equal.",
    )
    value: str | None = Field(
        default=None, description="Taint value to match with operator Equal; leave empty with Exists."
    )
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to match; unset matches every effect."
    )
    toleration_seconds: int | None = Field(
        default=None,
        description="Only with effect NoExecute: seconds the pod stays on a node after the taint appears "
        "before it is evicted. Unset: tolerated forever.",
    )


Quantity = Annotated[int | str, Field(description="A Kubernetes quantity, e.g. 500m or 1Gi.")]


class Resources(ApiModel):
    """Compute resources of the Job's container (Kubernetes ResourceRequirements)."""

    limits: dict[str, Quantity] | None = Field(
        default=None,
        description="Most of each resource (cpu, memory, ephemeral-storage) the container may use; a container "
        "over its memory limit is killed.",
    )
    requests: dict[str, Quantity] | None = Field(
        default=None,
        description="Amount of each resource (cpu, memory, ephemeral-storage) the scheduler reserves for the "
        "container. Unset for a resource that has a limit: the limit.",
    )


class EnvVar(ApiModel):
    """An extra environment variable for the Job (Kubernetes EnvVar shape)."""

    name: str = Field(min_length=1, description="Name of the environment variable.")
    value: str | None = Field(
        default=None, description="Literal value (unset: empty); do not put secrets here, use valueFrom."
    )
    value_from: dict[str, Any] | None = Field(
        default=None,
        json_schema_extra=PRESERVE_UNKNOWN,
        description="Where the value comes from instead of value (a Kubernetes EnvVarSource: secretKeyRef, "
        "configMapKeyRef, fieldRef or resourceFieldRef).",
    )


class JobSettings(ApiModel):
    """How the Job that does the work is run; anything unset takes the operator's default."""

    image: str | None = Field(
        default=None,
        min_length=1,
        description="Container image of the Job; it must provide the `ferry` command. Default: the operator's "
        "(Helm value jobs.image, else the operator's own image).",
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = Field(
        default=None,
        description="When the kubelet pulls the image (the container's imagePullPolicy). Default: the "
        "operator's (Helm value jobs.imagePullPolicy).",
    )
    resources: Resources | None = Field(
        default=None,
        description="Requests and limits of the Job's container. When set, it replaces the operator's defaults "
        "(Helm value jobs.resources) whole: what it leaves out is unset, not defaulted.",
    )
    backoff_limit: int | None = Field(
        default=None,
        ge=0,
        le=20,
        description="The Job's backoffLimit: how many times a failed pod is retried before the Job fails. Only "
        "a Failed result exits non-zero, so PartiallyFailed work is not retried. Default: the operator's "
        "(Helm value jobs.backoffLimit).",
    )
    active_deadline_seconds: int | None = Field(
        default=None,
        ge=1,
        description="The Job's activeDeadlineSeconds: seconds the Job may run, retries included, before "
        "Kubernetes stops it and it fails with DeadlineExceeded. Default: the operator's (Helm value "
        "jobs.activeDeadlineSeconds).",
    )
    ttl_seconds_after_finished: int | None = Field(
        default=None,
        ge=0,
        description="The Job's ttlSecondsAfterFinished: seconds a finished Job (and its pods and logs) is kept "
        "before Kubernetes deletes it. Default: the operator's (Helm value jobs.ttlSecondsAfterFinished).",
    )
    start_timeout_seconds: int | None = Field(
        default=None,
        ge=1,
        description="Seconds the Job's pod may take to start (a missing Secret or claim, an image that cannot be "
        "pulled, no node to run on) before the resource is Failed with the pod's reason and the Job is removed. "
        "Default: the operator's (Helm value jobs.startTimeoutSeconds, 300).",
    )
    service_account_name: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN,
        description="ServiceAccount the Job's pod runs as; to report progress it must be allowed to patch this "
        "resource's status. Default: the operator's (Helm value jobs.serviceAccountName).",
    )
    node_selector: dict[str, str] | None = Field(
        default=None, description="Node labels the Job's pod requires (the pod's nodeSelector). Unset: any node."
    )
    tolerations: list[Toleration] | None = Field(
        default=None, description="Tolerations of the Job's pod, to let it run on nodes with matching taints."
    )
    env: list[EnvVar] | None = Field(
        default=None,
        description="Extra environment variables of the Job's container, added after the operator's own; "
        "FERRY_JOB, KIROFRAME_TOKEN, HOME and TMPDIR are reserved.",
    )


class ScheduleSpec(ApiModel):
    """Cron-style scheduling, as in a Kubernetes CronJob, run by the operator itself."""

    time_zone: str | None = Field(
        default=None,
        max_length=64,
        description="IANA time zone the schedule is read in, e.g. Europe/Berlin. Unset: UTC.",
    )
    suspend: bool = Field(
        default=False,
        description="Start no new scheduled runs while true; a running Job continues. When it is set back to "
        "false, the latest run that came due meanwhile starts, unless past startingDeadlineSeconds.",
    )
    concurrency_policy: Literal["Allow", "Forbid", "Replace"] = Field(
        default="Forbid",
        description="When a run is due while an earlier run's Job is still active: Allow starts it too, Forbid "
        "skips it (counted in status.missedRuns), Replace deletes the active Job(s) and starts it.",
    )
    starting_deadline_seconds: int | None = Field(
        default=None,
        ge=1,
        description="A run not started within this many seconds of its scheduled time (e.g. the operator was "
        "down) is counted as missed and skipped. Unset: no deadline.",
    )
    successful_jobs_history_limit: int = Field(
        default=3,
        ge=0,
        le=100,
        description="Completed Jobs of scheduled runs to keep (PartiallyFailed runs complete too); older ones "
        "are deleted after each run.",
    )
    failed_jobs_history_limit: int = Field(
        default=1,
        ge=0,
        le=100,
        description="Failed Jobs of scheduled runs to keep; older ones are deleted after each run.",
    )


CRON_DESCRIPTION = (
    "Cron expression (5 fields, or 6 with seconds last), e.g. '0 3 * * *'; read in timeZone."
)
