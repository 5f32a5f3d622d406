"""Export MLflow metadata to the Kiroframe files and push them to Kiroframe, incrementally.

Knows nothing of Kubernetes."""
