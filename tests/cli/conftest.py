"""Fixtures for the command tests."""

from __future__ import annotations

import pytest

from tests.cli.helpers import Recorder


@pytest.fixture
def replace(monkeypatch):
    """``replace("sam3ops.convert.stage.convert_stage", result)`` -> a :class:`Recorder` in its place.

    The commands import the library when they run, so the replacement is what they call.
    """
    def _replace(target: str, result) -> Recorder:
        recorder = Recorder(result)
        monkeypatch.setattr(target, recorder)
        return recorder

    return _replace
