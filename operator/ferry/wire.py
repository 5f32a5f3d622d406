"""The one base of every model that travels as JSON between the operator, its Jobs and Kubernetes.

camelCase on the wire (``alias_generator``), snake_case in Python (``populate_by_name``), and
unknown fields are an error: a misspelt option fails validation instead of being dropped.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """camelCase on the wire; unknown fields are an error (the API server prunes them anyway)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def wire(self) -> dict[str, Any]:
        """The JSON shape Kubernetes stores: camelCase, no unset optional fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
