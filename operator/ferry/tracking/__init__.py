"""MLflow's REST API over `requests`: the one way the engines talk to a tracking server."""

from ferry.tracking.artifacts import ArtifactStore
from ferry.tracking.client import TrackingClient, tags_of
from ferry.tracking.settings import TrackingSettings
from ferry.tracking.transport import ApiError, JsonDict, LoginRejected, PermissionDenied

__all__ = ["ApiError", "ArtifactStore", "JsonDict", "LoginRejected", "PermissionDenied", "TrackingClient",
           "TrackingSettings", "tags_of"]
