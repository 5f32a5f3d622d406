"""Chart copies with changed values, for lint to judge (Helm's lint reads only the chart's values.yaml)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from devstack.helm import CHART, ERROR, ROOT, install, lint, uninstall

__all__ = ["CHART", "ERROR", "ROOT", "chart_copy_with_values", "install", "lint", "uninstall"]


def chart_copy_with_values(tmp: Path, overrides: dict[str, Any]) -> Path:
    """A copy of the chart whose values.yaml has `overrides` merged in."""
    copy = tmp / CHART.name
    shutil.copytree(CHART, copy)
    values = yaml.safe_load((copy / "values.yaml").read_text())
    (copy / "values.yaml").write_text(yaml.safe_dump(merge(values, overrides)))
    return copy


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
