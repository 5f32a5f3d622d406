"""mlflow-ferry: move MLflow data where platform teams need it.

The package has one concern per subpackage:

* :mod:`ferry.engine` exports, imports and copies MLflow objects (no Kubernetes);
* :mod:`ferry.kiroframe` exports MLflow metadata to Kiroframe's files and pushes them (no Kubernetes);
* :mod:`ferry.api` holds the pydantic models of the custom resources (the single source of truth);
* :mod:`ferry.controller` reconciles the resources with kopf (no MLflow);
* :mod:`ferry.cli` holds the thin command-line entry points.
"""

# The one place the version is written: pyproject.toml reads it from here, the chart's appVersion
# is tested against it. A literal, not importlib.metadata, so that every command starts fast.
__version__ = "0.1.0"
