"""kopf handlers that turn custom resources into Jobs and Jobs into status. Knows nothing of MLflow."""
