"""The Helm 4 SDK (`helm-sdkpy`) as plain functions for the tests: lint a chart, install, uninstall."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import helm_sdkpy as helm
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "mlflow-ferry"
ERROR = 3  # Helm's lint severities: 1 info, 2 warning, 3 error


def lint(chart: Path = CHART) -> list[tuple[int, str]]:
    """(severity, path) of every lint message; the SDK does not carry the messages' text."""
    result = asyncio.run(helm.Lint(helm.Configuration()).run(str(chart)))
    return [(m["Severity"], m["Path"]) for m in result["Messages"]]


def chart_copy_with_values(tmp: Path, overrides: dict[str, Any]) -> Path:
    """A copy of the chart whose values.yaml has `overrides` merged in (lint reads only values.yaml)."""
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


def install(kubeconfig: Path, namespace: str, release: str, values: dict[str, Any], timeout: int = 120) -> dict[str, Any]:
    config = helm.Configuration(namespace=namespace, kubeconfig=str(kubeconfig))
    return asyncio.run(helm.Install(config).run(release, str(CHART), values=values, create_namespace=True,
                                                wait=True, timeout=timeout))


def uninstall(kubeconfig: Path, namespace: str, release: str) -> dict[str, Any]:
    config = helm.Configuration(namespace=namespace, kubeconfig=str(kubeconfig))
    return asyncio.run(helm.Uninstall(config).run(release, wait=True, timeout=120))
