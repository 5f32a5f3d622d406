"""mlflow-ferry: move MLflow data where platform teams need it.

The package has one concern per subpackage:

* :mod:`ferry.engine` exports, imports and copies MLflow objects (no Kubernetes);
* :mod:`ferry.kiroframe` exports MLflow metadata to Kiroframe's files and pushes them (no Kubernetes);
* :mod:`ferry.api` holds the pydantic models of the custom resources (the single source of truth);
* :mod:`ferry.controller` reconciles the resources with kopf (no MLflow);
* :mod:`ferry.cli` holds the thin command-line entry points.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mlflow-ferry")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"
