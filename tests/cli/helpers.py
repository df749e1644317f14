"""Helpers for the command tests: invoke a command, stand in for the library function it calls."""

from __future__ import annotations

from click.testing import CliRunner

from sam3ops import cli
from sam3ops.tracking.result import StageResult


class Recorder:
    """Stands in for one library function: records the keyword arguments of each call, returns ``result``."""

    def __init__(self, result):
        self.result = result
        self.calls: list[dict] = []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        return self.result

    @property
    def kwargs(self) -> dict:
        """The arguments of the one call (fails when there was not exactly one)."""
        assert len(self.calls) == 1, self.calls
        return self.calls[0]


def invoke(*argv: str):
    """Run ``sam3ops ARGV`` through Click's test runner (exceptions propagate); return the click Result."""
    return CliRunner().invoke(cli.cli, list(argv), catch_exceptions=False)


def finished(stage: str, outputs, *, run_id: str = "run0123456789", reused: bool = False) -> StageResult:
    """A FINISHED stage result, as a stage function returns it."""
    return StageResult(stage=stage, run_id=run_id, outputs=outputs, reused=reused)
