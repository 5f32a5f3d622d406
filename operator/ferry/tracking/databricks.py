"""Databricks workspaces as tracking servers: the ``databricks`` and ``databricks://<profile>`` URIs.

They are resolved the way MLflow's own client resolves them, through databricks-sdk's
configuration code (installed with mlflow-skinny), so every form of sign-in a user already has
works unchanged:

* ``DATABRICKS_HOST`` + ``DATABRICKS_TOKEN`` (a personal access token);
* a profile of ``~/.databrickscfg``, or of the file ``DATABRICKS_CONFIG_FILE`` names (a mounted
  Secret): ``databricks://<profile>``, or ``DATABRICKS_CONFIG_PROFILE``, or its ``DEFAULT``;
* OAuth machine-to-machine: ``DATABRICKS_CLIENT_ID`` + ``DATABRICKS_CLIENT_SECRET``.

The SDK's header factory is asked for the headers of every request, so an OAuth token is
refreshed exactly when and how the SDK refreshes it. A copy between two workspaces reads each
side's variables with its prefix first (``SRC_DATABRICKS_HOST`` ...), like the tracking settings.

Unity Catalog registries (``databricks-uc``) are refused with one line: creating a Unity Catalog
model version means uploading its files to cloud storage through temporary credentials, which
nothing here can prove; the workspace model registry is supported.
"""

from __future__ import annotations

import configparser
import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests

from ferry.errors import ServerError, UsageError

SCHEME = "databricks"
UNITY_CATALOG = "databricks-uc"
# The variables databricks-sdk reads for the sign-in forms we document; a prefixed copy of any of
# them makes that side's configuration explicit.
SIGN_IN_VARIABLES = ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET",
                     "DATABRICKS_CONFIG_FILE", "DATABRICKS_CONFIG_PROFILE", "DATABRICKS_AUTH_TYPE")
_SDK_NAMES = {"DATABRICKS_HOST": "host", "DATABRICKS_TOKEN": "token", "DATABRICKS_CLIENT_ID": "client_id",
              "DATABRICKS_CLIENT_SECRET": "client_secret", "DATABRICKS_CONFIG_FILE": "config_file",
              "DATABRICKS_CONFIG_PROFILE": "profile", "DATABRICKS_AUTH_TYPE": "auth_type"}
SIGN_IN_HINT = ("set DATABRICKS_HOST with DATABRICKS_TOKEN, or with DATABRICKS_CLIENT_ID and "
                "DATABRICKS_CLIENT_SECRET, or name a profile of ~/.databrickscfg (or of DATABRICKS_CONFIG_FILE)")


def is_databricks_uri(uri: str) -> bool:
    """``databricks`` or ``databricks://<profile>``: a workspace, not an http(s) server."""
    return uri == SCHEME or uri.startswith(f"{SCHEME}://")


def is_unity_catalog_uri(uri: str) -> bool:
    return uri == UNITY_CATALOG or uri.startswith(f"{UNITY_CATALOG}:")


def refuse_unity_catalog(uri: str, variable: str) -> None:
    """One line for a Unity Catalog registry, which we do not copy; nothing for anything else."""
    if is_unity_catalog_uri(uri):
        raise UsageError(f"{variable} '{uri}' is a Unity Catalog model registry, which mlflow-ferry does not "
                         "support: it copies the workspace model registry (leave MLFLOW_REGISTRY_URI unset or "
                         "'databricks')")


def profile_of(uri: str) -> str | None:
    """The profile named by ``databricks://<profile>``; None for plain ``databricks``.

    MLflow's ``databricks://<scope>:<prefix>`` form reads secrets from a notebook's dbutils, which
    exist only inside a workspace: it is refused.
    """
    if uri == SCHEME:
        return None
    parsed = urlparse(uri)
    if parsed.path.strip("/") or parsed.query or ":" in parsed.netloc or "@" in parsed.netloc:
        raise UsageError(f"tracking URI '{uri}' is not 'databricks' or 'databricks://<profile>' (secret-scope "
                         "URIs work only inside a Databricks notebook)")
    return parsed.netloc or None


class _WorkspaceAuth(requests.auth.AuthBase):
    """Fresh headers from the SDK on every request, so OAuth tokens are refreshed as the SDK does."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        try:
            headers = self.workspace.config.authenticate()
        except Exception as err:  # the token endpoint refused the client, or cannot be reached
            raise ServerError(f"cannot sign in to the Databricks workspace at {self.workspace.host} with "
                              f"{self.workspace.credentials}: {_first_sentence(err)}") from None
        request.headers.update(headers)
        return request


@dataclass(frozen=True)
class Workspace:
    """One Databricks workspace, signed in to through databricks-sdk's configuration."""

    uri: str
    config: Any  # databricks.sdk.core.Config

    @property
    def host(self) -> str:
        return str(self.config.host).rstrip("/")

    @property
    def credentials(self) -> str:
        """Who we say we are, for error messages (never the secret itself)."""
        auth_type = self.config.auth_type
        profile = self.config.profile
        source = f"profile '{profile}' of {self.config.config_file or '~/.databrickscfg'}" if profile else None
        if auth_type == "pat":
            what = "a personal access token"
        elif auth_type == "oauth-m2m":
            what = f"OAuth client '{self.config.client_id}'"
        else:
            what = f"{auth_type} credentials"
        return f"{what} from {source}" if source else what

    @cached_property
    def auth(self) -> requests.auth.AuthBase:
        return _WorkspaceAuth(self)

    @cached_property
    def sdk(self) -> Any:
        """databricks-sdk's `WorkspaceClient` on the same configuration (Workspace and Permissions APIs)."""
        from databricks.sdk import WorkspaceClient

        return WorkspaceClient(config=self.config)


def resolve(uri: str, *, prefix: str = "", timeout: float = 60.0) -> Workspace:
    """The workspace a ``databricks[://profile]`` URI names, signed in as the environment says.

    `timeout` bounds the SDK's own retries (its default is five minutes per call, spent even on
    the best-effort host-metadata probe it makes while configuring).
    """
    from databricks.sdk.core import Config

    profile = profile_of(uri)
    explicit = {_SDK_NAMES[name]: os.environ[prefix + name] for name in SIGN_IN_VARIABLES
                if prefix and prefix + name in os.environ}
    if profile:
        explicit["profile"] = profile
        _require_profile(uri, profile, explicit.get("config_file") or os.environ.get("DATABRICKS_CONFIG_FILE"))
    try:
        with _quiet_sdk():
            config = Config(**explicit, retry_timeout_seconds=int(max(timeout, 1)),
                            http_timeout_seconds=int(max(timeout, 1)))
    except ValueError as err:
        raise UsageError(f"cannot sign in to Databricks for tracking URI '{uri}': {_first_sentence(err)}; "
                         f"{SIGN_IN_HINT}") from None
    if not config.host:
        raise UsageError(f"cannot sign in to Databricks for tracking URI '{uri}': no workspace host; {SIGN_IN_HINT}")
    return Workspace(uri, config)


def _require_profile(uri: str, profile: str, config_file: str | None) -> None:
    """A named profile that is not in the file gets its own line (the SDK only says it found no credentials)."""
    path = Path(config_file or "~/.databrickscfg").expanduser()
    parser = configparser.ConfigParser()
    try:
        parser.read_string(path.read_text(encoding="utf-8"))
    except (OSError, configparser.Error) as err:
        reason = err.strerror if isinstance(err, OSError) else "not a configuration file"
        raise UsageError(f"tracking URI '{uri}' names profile '{profile}', but {path} cannot be read: {reason}") from None
    if profile not in parser and profile != parser.default_section:
        raise UsageError(f"tracking URI '{uri}' names profile '{profile}', which {path} does not define")


@contextlib.contextmanager
def _quiet_sdk() -> Iterator[None]:
    """The SDK logs a warning when the host-metadata probe fails; the sign-in that follows says more."""
    logger = logging.getLogger("databricks.sdk")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _first_sentence(err: BaseException) -> str:
    """The SDK's reason without its documentation link and configuration dump."""
    text = " ".join(str(err).split())
    for cut in (", please check", ". Config:", ". Env:"):
        text = text.split(cut)[0]
    return text.removeprefix("default auth: ").rstrip(".")
