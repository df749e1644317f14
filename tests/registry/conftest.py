"""The registry tests' servers: a real ``mlflow server`` on sqlite and on PostgreSQL (artifacts through
its proxy), started once for the whole package, with registrable runs on it."""

from __future__ import annotations

import shutil
import uuid

import pytest

from sam3ops.registry import promote, register
from tests.support.models import build_formats
from tests.support.registry import point_at
from tests.support.servers import start_mlflow_server


@pytest.fixture(scope="package", params=["sqlite", "postgresql"])
def server(request, tmp_path_factory):
    """A real mlflow server for the package's tests (sqlite, then PostgreSQL behind it)."""
    started = start_mlflow_server(request.param, tmp_path_factory.mktemp(f"server-{request.param}"), request)
    started.kind = request.param
    yield started
    started.stop()


@pytest.fixture(scope="package")
def sources(server, tiny_weights, tmp_path_factory):
    """Registrable runs on ``server``: an init run (source checkpoint) and a real fp16 convert run."""
    from sam3ops.convert.stage import convert_stage
    from sam3ops.weights.stage import init_stage

    folder = tmp_path_factory.mktemp("sources")
    shutil.copytree(tiny_weights, folder / "tiny")  # init verifies and reuses it: a run without the build
    with pytest.MonkeyPatch.context() as patch:
        point_at(patch, server.uri)
        init_run = init_stage(preset="tiny", output=str(folder / "tiny"), seed=0).run_id
        # One photo and one prompt keep the parity gate short; tests/convert/test_stage.py covers the gate.
        convert_run = convert_stage(input_dir=str(folder / "tiny"), format="fp16", output=str(folder / "w16"),
                                    parity_images=["astronaut"], parity_prompts=["person"]).run_id
    return {"init": init_run, "fp16": convert_run, "fp16_dir": folder / "w16", "tiny_dir": folder / "tiny"}


@pytest.fixture(scope="package")
def published(server, sources):
    """The fp16 convert run registered on ``server`` and promoted to production, for the tests that
    only read a version (pyfunc, serve, load): (model name, version). Tests that change a version
    register their own."""
    name = f"sam3-published-{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as patch:
        point_at(patch, server.uri)
        version = register(run_id=sources["fp16"], name=name).version
        promote(version=version, name=name, allow_random=True, reason="shared by the read-only tests")
    return name, version


@pytest.fixture
def remote(server, sources, isolated, monkeypatch):
    """This test talks to ``server``; returns (server, sources, a model name of its own)."""
    point_at(monkeypatch, server.uri)
    return server, sources, f"sam3-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="package")
def formats(tiny_weights, tmp_path_factory):
    """A store of its own with fp32 (init), fp16 and ONNX (convert), each benchmarked and registered."""
    return build_formats(tmp_path_factory.mktemp("formats"), tiny_weights)
