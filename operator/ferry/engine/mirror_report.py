"""What the parts of a mirror sync share: the experiments it pairs, and what it did so far."""

from __future__ import annotations

from dataclasses import dataclass, field

from ferry.outcome import Counts, Outcome
from ferry.tracking import JsonDict


@dataclass(frozen=True)
class ExperimentPair:
    src: JsonDict
    dst_id: str
    dst_name: str

    @property
    def src_id(self) -> str:
        return str(self.src["experiment_id"])


@dataclass
class SyncReport:
    """What one sync did, gathered as it goes."""

    counts: Counts = field(default_factory=Counts)
    failed: list[str] = field(default_factory=list)
    unchanged: int = 0

    def add(self, outcome: Outcome) -> None:
        self.counts += outcome.counts
        self.failed += outcome.failed
