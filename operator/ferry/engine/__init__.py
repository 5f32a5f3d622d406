"""Export, import and copy of MLflow runs, experiments, registered models and model versions.

Knows nothing of Kubernetes: the operator runs it in a Job, users run it from the command line."""
