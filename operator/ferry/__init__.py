"""mlflow-ferry: move MLflow data where platform teams need it.

The package has one concern per subpackage (docs/architecture.md has the map and the rules):

* :mod:`ferry.tracking` speaks MLflow's REST API; :mod:`ferry.engine` exports, imports and copies
  MLflow objects; :mod:`ferry.kiroframe` exports MLflow metadata to Kiroframe and pushes it
  (none of them knows Kubernetes);
* :mod:`ferry.options` (what to move and how) and :mod:`ferry.outcome` (phases, counts, results)
  are shared by the engine, the resources and the commands;
* :mod:`ferry.api` holds the pydantic models of the custom resources (the single source of truth);
* :mod:`ferry.controller` reconciles the resources with kopf (no MLflow); :mod:`ferry.runner` is
  what a Job runs; :mod:`ferry.kube` is the Kubernetes access both share;
* :mod:`ferry.cli` holds the thin command-line entry points.
"""

# The one place the version is written: pyproject.toml reads it from here, the chart's appVersion
# is tested against it. A literal, not importlib.metadata, so that every command starts fast.
__version__ = "0.1.0"
