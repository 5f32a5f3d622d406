"""What a decision asks for: the controller's decisions return these, one executor carries them out.

Decisions (`lifecycle`, `references`, `convergence`, `schedules`, `history`) are pure functions
of what was read and the time; they never call Kubernetes. So each is unit-tested by comparing
the actions it returns, and the only code that writes to the cluster is `ferry.controller.executor`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ferry.api.status import StatusModel


@dataclass(frozen=True)
class PatchStatus:
    """Merge-patch the resource's status with exactly the fields set in `status`."""

    status: StatusModel


@dataclass(frozen=True)
class Emit:
    """Post an Event about the resource (``kubectl describe`` shows it)."""

    reason: str
    message: str
    warning: bool = False


@dataclass(frozen=True)
class CreateJob:
    """Create `job`; then, whether it was new or already there (409), carry out `then`.

    A Job the API server refuses (400/422) is the spec's fault: `refused(reason)` says what to do
    instead. A new Job is announced with a ``JobCreated`` Event.
    """

    job: dict[str, Any]
    then: Sequence[Action] = ()
    refused: Callable[[str], Sequence[Action]] = field(default=lambda reason: (), compare=False)

    @property
    def name(self) -> str:
        return self.job["metadata"]["name"]


@dataclass(frozen=True)
class DeleteJob:
    name: str


@dataclass(frozen=True)
class AnnotateJob:
    name: str
    annotations: dict[str, str]


Action = PatchStatus | Emit | CreateJob | DeleteJob | AnnotateJob
Actions = list[Action]
