"""Pydantic models of the custom resources: the single source of truth for CRDs and Jobs.

Group ``ferry.dev``, version ``v1alpha1``; `ferry.api.resources.KINDS` lists the kinds with what
the CRD generator (`ferry.api.crds`), the controller and the Job runner need to know of each.
"""

from ferry.api.resources import API_VERSION, BY_KIND, BY_PLURAL, GROUP, KINDS, VERSION, Kind

__all__ = ["API_VERSION", "BY_KIND", "BY_PLURAL", "GROUP", "KINDS", "VERSION", "Kind"]
