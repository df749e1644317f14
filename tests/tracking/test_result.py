"""The one result type every stage returns."""

import dataclasses

import pytest

from sam3ops.errors import ParityError
from sam3ops.tracking.result import FAILED, FINISHED, StageResult


def test_a_finished_result_returns_itself():
    result = StageResult(stage="convert", run_id="r", outputs={"x": 1})
    assert result.status == FINISHED and result.ok and result.raise_for_status() is result
    assert not result.reused and result.error is None


def test_a_failed_result_raises_its_own_error():
    error = ParityError("under the gate")
    result = StageResult(stage="convert", run_id="r", status=FAILED, error=error)
    assert not result.ok
    with pytest.raises(ParityError) as caught:
        result.raise_for_status()
    assert caught.value is error


@pytest.mark.parametrize("status, error", [(FAILED, None), (FINISHED, ParityError("x")), ("RUNNING", None)])
def test_status_and_error_must_agree(status, error):
    with pytest.raises(ValueError, match="cannot have status"):
        StageResult(stage="convert", run_id="r", status=status, error=error)


def test_results_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        StageResult(stage="init", run_id="r").run_id = "other"
