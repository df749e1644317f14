"""What every stage returns: its run, how it ended, and what it made.

A stage either cannot run (a typed error is raised: the run ends FAILED and nothing is returned)
or runs to the end and returns a :class:`StageResult`. Its status is FAILED when the stage ran but
its outcome fails the stage's own check (a conversion under the parity gate, a prediction where some
images failed): everything is logged, the run ends FAILED with the error tag, and the result keeps
the run id and the typed error, so a caller can record the failure (the pipeline) or raise it (the CLI).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from sam3ops.errors import Sam3opsError

T = TypeVar("T")

FINISHED = "FINISHED"
FAILED = "FAILED"


@dataclass(frozen=True)
class StageResult(Generic[T]):
    """One stage's MLflow run and its outcome.

    Attributes:
        stage: the stage name (the run's ``sam3ops.stage`` tag): download, init, predict, convert, ...
        run_id: the run that holds the stage's params, metrics and artifacts (when ``reused``: the
            earlier run whose output was reused).
        status: ``FINISHED``, or ``FAILED`` when the outcome failed the stage's check (see ``error``).
        outputs: the stage's own result object (a ``ParityReport``, ``BenchResults``, ...); ``None``
            when reused (the earlier run holds the numbers).
        reused: nothing was recomputed: an earlier identical run (or output already in place) was used.
        error: for a FAILED result, the typed error its run was tagged with.
    """

    stage: str
    run_id: str
    status: str = FINISHED
    outputs: T | None = None
    reused: bool = False
    error: Sam3opsError | None = None

    def __post_init__(self) -> None:
        # A failed result without its error could not be reported; a finished one with an error is a contradiction.
        if self.status not in (FINISHED, FAILED) or (self.status == FAILED) != (self.error is not None):
            raise ValueError(f"a {self.stage} result cannot have status {self.status!r} with error {self.error!r}")

    @property
    def ok(self) -> bool:
        """True when the stage's outcome passed (status FINISHED)."""
        return self.status == FINISHED

    def raise_for_status(self) -> StageResult[T]:
        """Return this result when it is FINISHED.

        Raises:
            Sam3opsError: the result's error, when it is FAILED.
        """
        if self.error is not None:
            raise self.error
        return self
