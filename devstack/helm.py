"""The Helm 4 SDK (`helm-sdkpy`, Helm's Go library through cffi) as three plain calls on our chart.

The tests lint and install the chart with it, and the demo installs it; there is no `helm` binary.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import helm_sdkpy as helm

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "mlflow-ferry"
ERROR = 3  # Helm's lint severities: 1 info, 2 warning, 3 error


def lint(chart: Path = CHART) -> list[tuple[int, str]]:
    """(severity, path) of every lint message; the SDK does not carry the messages' text."""
    result = asyncio.run(helm.Lint(helm.Configuration()).run(str(chart)))
    return [(m["Severity"], m["Path"]) for m in result["Messages"]]


def install(kubeconfig: Path, namespace: str, release: str, values: dict[str, Any], timeout: int = 120,
            chart: Path = CHART) -> dict[str, Any]:
    """`helm install --create-namespace --wait`; raises helm_sdkpy.InstallError with Helm's message."""
    config = helm.Configuration(namespace=namespace, kubeconfig=str(kubeconfig))
    return asyncio.run(helm.Install(config).run(release, str(chart), values=values, create_namespace=True,
                                                wait=True, timeout=timeout))


def uninstall(kubeconfig: Path, namespace: str, release: str) -> dict[str, Any]:
    config = helm.Configuration(namespace=namespace, kubeconfig=str(kubeconfig))
    return asyncio.run(helm.Uninstall(config).run(release, wait=True, timeout=120))
