"""Registering: what is refused, what a version's tags say (benchmark numbers included), and that a
run whose earlier registration cannot be checked is not registered again."""

from __future__ import annotations

import re
import time

import mlflow
import pytest

from sam3ops import tracking
from sam3ops.errors import RegistryError, TrackingAuthError, TrackingServerError
from sam3ops.registry import register
from sam3ops.registry.client import client
from tests.support.cli import run_cli
from tests.support.faults import FaultyProxy
from tests.support.registry import fake_run, point_at

pytestmark = pytest.mark.slow

SEARCH_VERSIONS = "/api/2.0/mlflow/model-versions/search"  # the "is this run registered already?" lookup


def _last_line(capsys, *argv) -> tuple[int, str]:
    code, _, err = run_cli(capsys, *argv)
    return code, err.strip().splitlines()[-1] if err.strip() else ""


def test_register_refusals(remote, capsys):
    server, sources, name = remote
    failed = fake_run({tracking.STAGE_TAG: "convert", "format": "bf16", "parity": "fail"}, status="FAILED")
    code, err = _last_line(capsys, "register", "--run-id", failed, "--name", name)
    assert code == 1 and f"run {failed} failed the parity gate" in err and "never registered" in err
    unfinished = fake_run({tracking.STAGE_TAG: "convert", "format": "fp16", "parity": "pass"}, status="RUNNING")
    code, err = _last_line(capsys, "register", "--run-id", unfinished, "--name", name)
    assert code == 1 and "ended RUNNING: only a FINISHED run is registered" in err
    other = fake_run({tracking.STAGE_TAG: "predict"}, experiment="sam3-predict")
    code, err = _last_line(capsys, "register", "--run-id", other, "--name", name)
    assert code == 1 and "is a predict run: register takes a convert run" in err
    code, err = _last_line(capsys, "register", "--run-id", "0" * 32, "--name", name)
    assert code == 1 and f"run '{'0' * 32}' not found" in err
    assert not client().search_registered_models(f"name = '{name}'")  # none of them made a model


# How a server can fail the lookup, and the error each failure must become.
LOOKUP_FAILURES = [
    # The server answered every time, so it is up: its store is what failed (not "cannot reach").
    (503, "TEMPORARILY_UNAVAILABLE", TrackingServerError, "kept answering with server errors"),
    (403, "PERMISSION_DENIED", TrackingAuthError, "refused these credentials (HTTP 403"),
    (400, "INVALID_PARAMETER_VALUE", RegistryError, "answered INVALID_PARAMETER_VALUE (HTTP 400)"),
]


def test_failed_lookup_of_earlier_versions_registers_nothing(remote, capsys, monkeypatch):
    """The server fails "is this run registered already?": one line, and no second version of the run."""
    server, sources, name = remote
    run_id = sources["init"]
    first = register(run_id=run_id, name=name)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # MLflow's own retries of a 503 take minutes
    for status, code, error, fragment in LOOKUP_FAILURES:
        def rule(method: str, path: str, status=status, code=code):
            return (status, code) if path == SEARCH_VERSIONS else None

        with FaultyProxy(server.uri, rule) as proxy:
            point_at(monkeypatch, proxy.uri)
            with pytest.raises(error, match=re.escape(fragment)) as caught:
                register(run_id=run_id, name=name)
            assert caught.value.message.startswith(
                f"run {run_id} was not registered: could not check whether '{name}' has it already: ")
            exit_code, line = _last_line(capsys, "register", "--run-id", run_id, "--name", name)
        assert proxy.failed == [("GET", SEARCH_VERSIONS)] * 2, status  # the lookup failed, and nothing else
        assert exit_code == 1 and line.startswith(f"sam3ops: error: run {run_id} was not registered") \
            and fragment in line, (status, line)

    point_at(monkeypatch, server.uri)
    assert [v.version for v in client().search_model_versions(f"name = '{name}'")] == [first.version]
    register_runs = mlflow.search_runs(experiment_names=["sam3-register"], output_format="list",
                                       filter_string=f"params.name = '{name}'")
    assert [r.info.run_id for r in register_runs] == [first.register_run_id]


def test_benchmark_numbers_become_version_tags(tiny_weights):
    """The newest finished benchmark run that names the artifact lends its numbers (largest batch)."""
    convert_run = fake_run({tracking.STAGE_TAG: "convert", "format": "fp16", "precision": "fp16", "parity": "pass",
                            "weights_random": "true"}, weights=tiny_weights)
    mlflow_client = client()
    benchmark = tracking.ensure_experiment("sam3-benchmark")
    for age, (tags, params) in enumerate([({"source_run_id": convert_run}, {}),  # newest: wins
                                          ({}, {"weights": f"runs:/{convert_run}/weights"}),
                                          ({}, {"weights": "weights/other"})]):
        run = mlflow_client.create_run(benchmark, tags={tracking.STAGE_TAG: "benchmark", **tags},
                                       start_time=int(time.time() * 1000) - 1000 * age)
        for key, value in params.items():
            mlflow_client.log_param(run.info.run_id, key, value)
        for batch in (1, 8):
            mlflow_client.log_metric(run.info.run_id, "ms_per_image", 100.0 / batch + age, step=batch)
            mlflow_client.log_metric(run.info.run_id, "throughput_img_s", 10.0 * batch, step=batch)
        mlflow_client.log_metric(run.info.run_id, "not_a_bench_metric", 1.0)
        mlflow_client.set_terminated(run.info.run_id, "FINISHED")
        if age == 0:
            newest = run.info.run_id
    tags = register(run_id=convert_run, name="benched").tags
    assert tags["bench_run_id"] == newest
    assert (tags["bench.ms_per_image"], tags["bench.throughput_img_s"], tags["bench.batch"]) == ("12.5", "80", "8")
    assert "bench.not_a_bench_metric" not in tags
    assert client().get_model_version("benched", "1").tags["bench.ms_per_image"] == "12.5"
