"""A real Prometheus (Debian's `prometheus` package) on 127.0.0.1, scraping the targets it is given.

Tests point it at the operator's /metrics and at the chart's alert rules, then ask it what it
scraped and which rules it loaded, through its HTTP API — as a platform team's Prometheus would.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from devstack.procs import free_port, spawn, stop_pid, wait_until

BINARY = "prometheus"


def available() -> bool:
    return shutil.which(BINARY) is not None


@dataclass
class PrometheusServer:
    root: Path
    targets: list[str]  # host:port of each /metrics endpoint
    rule_files: list[Path] = field(default_factory=list)
    scrape_interval: str = "1s"
    port: int = field(default_factory=free_port)
    pid: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> PrometheusServer:
        self.root.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {"scrape_interval": self.scrape_interval, "evaluation_interval": self.scrape_interval},
            "rule_files": [str(p) for p in self.rule_files],
            "scrape_configs": [{"job_name": "ferry-operator", "static_configs": [{"targets": self.targets}]}],
        }
        (self.root / "prometheus.yml").write_text(yaml.safe_dump(config))
        argv = [BINARY, f"--config.file={self.root / 'prometheus.yml'}", f"--storage.tsdb.path={self.root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}"]
        proc = spawn(argv, self.root / "prometheus.log")
        self.pid = proc.pid
        wait_until(self._ready, timeout, "prometheus ready", proc, self.root / "prometheus.log")
        return self

    def _ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/-/ready", timeout=2).ok
        except requests.RequestException:
            return False

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector `expr` evaluates to now: [{'metric': {...}, 'value': [t, 'v']}, ...]."""
        answer = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10).json()
        return answer["data"]["result"]

    def rules(self) -> list[dict[str, Any]]:
        groups = requests.get(f"{self.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
        return [rule for group in groups for rule in group["rules"]]

    def stop(self) -> None:
        if self.pid is not None:
            stop_pid(self.pid)
            self.pid = None
