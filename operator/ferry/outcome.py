"""What a piece of work reports: the phase vocabulary, its counts, and the `Outcome` itself.

One model for every engine and every command, so the operator reads any Job's result without
knowing which engine ran, and the command line reports it the same way. `Phase` is the one
phase vocabulary of the project: the resources' ``status.phase``, an Outcome's phase and every
decision of the controller use it. Kept small: Kubernetes truncates a termination message at
4096 bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class Phase(StrEnum):
    """Where the work is: waiting, running, or how it ended."""

    # Succeeded, PartiallyFailed and Failed are also how one piece of work (an Outcome) ends.

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    PARTIALLY_FAILED = "PartiallyFailed"
    FAILED = "Failed"
    FAILED_VALIDATION = "FailedValidation"

    @property
    def terminal(self) -> bool:
        """Nothing more happens to a one-shot resource in this phase."""
        return self in TERMINAL_PHASES

    @property
    def failed(self) -> bool:
        return self in (Phase.PARTIALLY_FAILED, Phase.FAILED, Phase.FAILED_VALIDATION)


TERMINAL_PHASES: frozenset[Phase] = frozenset(
    {Phase.SUCCEEDED, Phase.PARTIALLY_FAILED, Phase.FAILED, Phase.FAILED_VALIDATION}
)
RESULT_PHASES: frozenset[Phase] = frozenset({Phase.SUCCEEDED, Phase.PARTIALLY_FAILED, Phase.FAILED})


def _is_result(phase: Phase) -> Phase:
    if phase not in RESULT_PHASES:
        raise ValueError(f"a piece of work ends Succeeded, PartiallyFailed or Failed, not {phase.value}")
    return phase


ResultPhase = Annotated[Phase, AfterValidator(_is_result)]


class Counts(BaseModel):
    """Objects carried, by kind."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    # Also the resources' status.counts: one model for the engine's result and the status.
    experiments: int = Field(default=0, description="Experiments carried.")
    runs: int = Field(default=0, description="Runs carried.")
    models: int = Field(default=0, description="Registered models carried.")
    versions: int = Field(default=0, description="Registered model versions carried.")
    logged_models: int = Field(default=0, description="MLflow 3 logged models carried.")
    traces: int = Field(default=0, description="Traces carried, with their spans and assessments.")
    prompts: int = Field(default=0, description="Prompts carried.")
    prompt_versions: int = Field(default=0, description="Prompt versions carried.")
    evaluation_datasets: int = Field(default=0, description="Evaluation datasets carried, with their records.")
    scorers: int = Field(default=0, description="Scorers registered on experiments carried.")
    webhooks: int = Field(default=0, description="Model registry webhooks carried (MLflow 3.3 and later).")
    bytes: int = Field(default=0, description="Artifact bytes carried.")

    def __add__(self, other: Counts) -> Counts:
        return Counts(**{name: getattr(self, name) + getattr(other, name) for name in Counts.model_fields})

    @property
    def objects(self) -> int:
        """Objects carried, bytes aside: what tells 'partly done' from 'nothing done'."""
        return sum(getattr(self, name) for name in Counts.model_fields if name != "bytes")

    def sentence(self) -> str:
        """The classic four always, the MLflow 3 kinds when there are any (so MLflow 2 work reads as before)."""
        words = f"{self.experiments} experiments, {self.runs} runs, {self.models} models, {self.versions} versions"
        for name in MLFLOW3_KINDS:
            if getattr(self, name):
                words += f", {getattr(self, name)} {name.replace('_', ' ')}"
        return words


MLFLOW3_KINDS = ("logged_models", "traces", "prompts", "prompt_versions", "evaluation_datasets", "scorers", "webhooks")


class Outcome(BaseModel):
    phase: ResultPhase = Phase.SUCCEEDED
    counts: Counts = Field(default_factory=Counts)
    failed: list[str] = Field(default_factory=list, description="The objects that failed, each with its reason.")
    message: str = ""
    path: str | None = Field(default=None, description="Where the export was written, if anything was.")
    watermark: int | None = Field(default=None, description="Kiroframe sync, mirror: the next incremental start (ms).")
    lag_seconds: int | None = Field(
        default=None, description="Mirror: age of the oldest source change not copied when the sync ended; 0: in step."
    )
    full_compare_time: int | None = Field(
        default=None, description="Mirror: when this sync began comparing everything (ms); unset: it was incremental."
    )

    @classmethod
    def of(cls, counts: Counts, failed: Iterable[str] = (), *, message: str | None = None,
           path: str | None = None, done: int | None = None) -> Outcome:
        """The outcome of work that carried `counts` and listed `failed`: the one rule for its phase.

        Nothing failed: Succeeded; something failed but something was done (`done`, by default
        the objects counted): PartiallyFailed; nothing done: Failed. Without a `message`, the counts
        in words and the number of failures.
        """
        failures = list(failed)
        done = counts.objects if done is None else done
        phase = Phase.SUCCEEDED if not failures else (Phase.PARTIALLY_FAILED if done else Phase.FAILED)
        if message is None:
            message = counts.sentence() + (f"; {len(failures)} failed" if failures else "")
        return cls(phase=phase, counts=counts, failed=failures, message=message, path=path)

    @classmethod
    def combine(cls, parts: Iterable[Outcome], *, path: str | None = None) -> Outcome:
        """Parts of one piece of work (experiments, runs, models) as one outcome, by the rule of `of`."""
        counts, failed = Counts(), []
        for part in parts:
            counts += part.counts
            failed += part.failed
        return cls.of(counts, failed, path=path)

    def to_termination_message(self, limit: int = 4000) -> str:
        """JSON that fits a termination message; failures are cut from the end first."""
        data = self.model_copy(deep=True)
        text = data.model_dump_json(exclude_none=True)
        while len(text.encode()) > limit and data.failed:
            data.failed = data.failed[: len(data.failed) // 2]
            text = data.model_dump_json(exclude_none=True)
        if len(text.encode()) > limit:
            data.message = data.message[:500]
            text = data.model_dump_json(exclude_none=True)
        return text
