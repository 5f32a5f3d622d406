"""Pydantic models of the custom resources: the single source of truth for CRDs and Jobs."""
