"""Prometheus metrics of the operator: what a platform team graphs and alerts on.

Results are counted where they are decided: the executor hands every status patch it sends to
`Metrics.observe`, so a finished piece of work is counted once, when its result is written
(the Job is recorded in the same step). The state of every resource (phase, last success, a
mirror's lag) is read at scrape time from the watch's own copy (`Inventory`), so it is never
stale and costs nothing between scrapes. Served by prometheus-client on ``--metrics-port``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ferry.controller.cron import interval_seconds, now, parse_time
from ferry.controller.jobstate import STUCK_REASONS
from ferry.controller.resource import Resource
from ferry.outcome import RESULT_PHASES, Phase

DURATION_BUCKETS = (10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, float("inf"))
MOVED = ("experiments", "runs", "models", "versions", "bytes")


@dataclass(frozen=True)
class Seen:
    """What the metrics need of one resource, as the watch last saw it."""

    kind: str
    namespace: str
    name: str
    phase: str
    reason: str = ""
    last_successful: str | None = None
    period: float | None = None  # seconds between scheduled runs
    lag: int | None = None  # a mirror's status.lagSeconds

    @classmethod
    def of(cls, resource: Resource) -> Seen:
        status = resource.status
        succeeded = next((c for c in status.conditions or [] if c.type == "Succeeded"), None)
        schedule, zone = resource.spec.get("schedule"), resource.spec.get("timeZone")
        period = interval_seconds(schedule, zone, now()) if isinstance(schedule, str) and schedule else None
        return cls(resource.kind.kind, resource.namespace, resource.name,
                   status.phase.value if status.phase else "", succeeded.reason if succeeded else "",
                   getattr(status, "last_successful_time", None), period, getattr(status, "lag_seconds", None))  # fmt: skip


class Inventory(Collector):
    """Gauges over every resource the operator watches, computed when Prometheus scrapes."""

    def __init__(self, resources: Callable[[], Iterable[Seen]]) -> None:
        self.resources = resources

    def collect(self) -> Iterator[GaugeMetricFamily]:
        phases = GaugeMetricFamily("ferry_resources", "Resources by kind and phase.", labels=["kind", "phase"])
        stuck = GaugeMetricFamily("ferry_jobs_not_starting",
                                  "Resources whose Job's pod cannot start (missing Secret or claim, image pull, "
                                  "unschedulable).", labels=["kind", "namespace", "name", "reason"])  # fmt: skip
        success = GaugeMetricFamily("ferry_last_successful_timestamp_seconds",
                                    "When a scheduled resource's last run succeeded (Unix time).",
                                    labels=["kind", "namespace", "name"])  # fmt: skip
        period = GaugeMetricFamily("ferry_schedule_period_seconds", "Seconds between a scheduled resource's runs.",
                                   labels=["kind", "namespace", "name"])
        lag = GaugeMetricFamily("ferry_mirror_lag_seconds",
                                "How far a mirror's standby is behind its source, as of its latest sync "
                                "(status.lagSeconds).", labels=["namespace", "name"])  # fmt: skip
        counted: dict[tuple[str, str], int] = {}
        for seen in self.resources():
            key = (seen.kind, seen.phase or "New")
            counted[key] = counted.get(key, 0) + 1
            if seen.phase == Phase.PENDING and seen.reason in STUCK_REASONS | {"ContainerCreating", "Unschedulable"}:
                stuck.add_metric([seen.kind, seen.namespace, seen.name, seen.reason], 1)
            if seen.last_successful:
                success.add_metric([seen.kind, seen.namespace, seen.name], parse_time(seen.last_successful).timestamp())
            if seen.period:
                period.add_metric([seen.kind, seen.namespace, seen.name], seen.period)
            if seen.lag is not None:
                lag.add_metric([seen.namespace, seen.name], seen.lag)
        for (kind, phase), count in sorted(counted.items()):
            phases.add_metric([kind, phase], count)
        yield phases
        yield stuck
        yield success
        yield period
        yield lag


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None, watch_restarts: int = 0) -> None:
        self.registry = registry or CollectorRegistry()
        self.results = Counter("ferry_results", "Finished pieces of work (Jobs) by kind and outcome.",
                               ["kind", "phase"], registry=self.registry)
        self.duration = Histogram("ferry_job_duration_seconds", "How long a Job worked, by kind and outcome.",
                                  ["kind", "phase"], buckets=DURATION_BUCKETS, registry=self.registry)
        self.moved = Counter("ferry_objects_moved", "Objects carried by finished Jobs, by kind of resource and of "
                             "object (bytes: artifact bytes).", ["kind", "object"], registry=self.registry)
        self.failures = Counter("ferry_failures", "Resources that ended failed, by kind and reason.",
                                ["kind", "reason"], registry=self.registry)
        self.errors = Counter("ferry_reconcile_errors", "Handler runs that raised (they are retried).",
                              ["handler"], registry=self.registry)
        self.watch_restarts = Counter("ferry_watch_restarts", "Times the operator started its watches again "
                                      "because the API server had stopped serving them.", registry=self.registry)
        self.watch_restarts.inc(watch_restarts)  # counted by the process that outlives them

    def watch(self, resources: Callable[[], Iterable[Seen]]) -> None:
        self.registry.register(Inventory(resources))

    def serve(self, port: int) -> None:
        start_http_server(port, registry=self.registry)

    def observe(self, resource: Resource, status: object) -> None:
        """Count what a status patch says has ended: a result, its objects, a failure."""
        phase = getattr(status, "phase", None)
        if phase is None or phase not in (*RESULT_PHASES, Phase.FAILED_VALIDATION):
            return
        kind = resource.kind.kind
        succeeded = next((c for c in getattr(status, "conditions", None) or [] if c.type == "Succeeded"), None)
        if phase.failed:
            self.failures.labels(kind, succeeded.reason if succeeded else phase.value).inc()
        if phase is Phase.FAILED_VALIDATION:
            return
        self.results.labels(kind, phase.value).inc()
        counts = getattr(status, "counts", None)
        for name in MOVED if counts is not None else ():
            if getattr(counts, name):
                self.moved.labels(kind, name).inc(getattr(counts, name))
        start = getattr(status, "start_time", None) or resource.status.start_time
        end = getattr(status, "completion_time", None)
        if start and end:
            self.duration.labels(kind, phase.value).observe(max(0.0, (parse_time(end) - parse_time(start)).total_seconds()))
