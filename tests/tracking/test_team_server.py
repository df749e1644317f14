"""The team setup: clients pointing MLFLOW_TRACKING_URI at a PostgreSQL-backed `mlflow server`."""

from __future__ import annotations

import json
import subprocess

import mlflow
import pytest

from tests.conftest import subprocess_env
from tests.support.servers import MlflowServer

pytestmark = pytest.mark.slow

PER_BATCH = ("latency_p50_ms", "latency_p99_ms", "ms_per_image", "throughput_img_s", "host_rss_peak_mb",
             "stage_vision_ms", "stage_decoder_ms")


@pytest.fixture
def team_server(postgres, tmp_path, monkeypatch):
    """An mlflow server on a fresh PostgreSQL database, artifacts through its proxy; this test's client on it."""
    server = MlflowServer(postgres.new_database(), tmp_path / "artifacts", workers=2,
                          log=tmp_path / "server.log").start()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    mlflow.set_tracking_uri(server.uri)
    mlflow.set_registry_uri(server.uri)
    yield server
    server.stop()


def test_four_benchmark_clients_at_once_lose_no_run_metric_or_artifact(team_server, tiny_weights, tmp_path):
    precisions = ["fp32", "bf16", "fp16", "fp32"]
    clients = [subprocess.Popen(
        ["sam3ops", "bench", "--weights", str(tiny_weights), "--precision", precision, "--batch", "1,2",
         "--iterations", "2", "--warmup", "1", "--image-size", "256", "--prompts-per-image", "2", "--no-parity"],
        env=subprocess_env(MLFLOW_TRACKING_URI=team_server.uri), cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for precision in precisions]
    outputs = [client.communicate(timeout=600) for client in clients]
    for client, (_, err) in zip(clients, outputs):
        assert client.returncode == 0, err[-2000:]
    run_ids = {line.split()[1] for out, _ in outputs for line in out.splitlines() if line.startswith("run ")}
    assert len(run_ids) == 4

    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name("sam3-benchmark")
    runs = client.search_runs([experiment.experiment_id])
    assert {r.info.run_id for r in runs} == run_ids and all(r.info.status == "FINISHED" for r in runs)
    assert sorted(r.data.params["precision"] for r in runs) == sorted(precisions)
    for run in runs:
        for name in PER_BATCH:
            assert [m.step for m in client.get_metric_history(run.info.run_id, name)] == [1, 2], name
        # The artifacts came through the server's proxy and agree with the metrics.
        local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(tmp_path / run.info.run_id))
        results = json.loads(open(f"{local}/benchmark.json").read())
        p50 = {b["batch"]: b["latency"]["p50_ms"] for b in results["configs"][0]["batches"]}
        history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "latency_p50_ms")}
        assert history == pytest.approx(p50)
        assert len(json.loads(open(f"{local}/benchmark_table.json").read())["data"]) == 2
        assert "Plotly.newPlot" in open(f"{local}/benchmark_charts.html").read()


def test_basic_auth_server_refuses_a_client_without_credentials(postgres, tiny_weights, tmp_path):
    config = tmp_path / "basic_auth.ini"
    config.write_text("[mlflow]\ndefault_permission = READ\n"
                      f"database_uri = {postgres.new_database()}\nadmin_username = admin\n"
                      "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
    server = MlflowServer(postgres.new_database(), tmp_path / "artifacts", log=tmp_path / "server.log",
                          extra_args=("--app-name", "basic-auth"),
                          env={"MLFLOW_AUTH_CONFIG_PATH": str(config),
                               "MLFLOW_AUTH_ADMIN_PASSWORD": "long-s3cret-password",
                               "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only-csrf-key"})
    server.start()
    try:
        command = ["sam3ops", "bench", "--weights", str(tiny_weights), "--batch", "1", "--iterations", "1",
                   "--warmup", "0", "--image-size", "256", "--prompts-per-image", "1"]
        refused = subprocess.run(command, env=subprocess_env(MLFLOW_TRACKING_URI=server.uri), cwd=tmp_path,
                                 capture_output=True, text=True, timeout=300)
        assert refused.returncode != 0
        lines = [line for line in refused.stderr.splitlines() if line.startswith("sam3ops: error:")]
        assert len(lines) == 1 and "refused these credentials" in lines[0], refused.stderr[-2000:]
        assert "MLFLOW_TRACKING_USERNAME" in lines[0]
        allowed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                                 env=subprocess_env(MLFLOW_TRACKING_URI=server.uri, MLFLOW_TRACKING_USERNAME="admin",
                                                    MLFLOW_TRACKING_PASSWORD="long-s3cret-password"))
        assert allowed.returncode == 0, allowed.stderr[-2000:]
        assert "long-s3cret-password" not in allowed.stdout + allowed.stderr
    finally:
        server.stop()


def test_main_job_against_the_postgresql_server(capsys, team_server, tmp_path):
    from tests.pipeline.test_run import QUICK, check_main_job
    from tests.support.cli import run_cli

    code, out, err = run_cli(capsys, "pipeline", *QUICK)
    assert code == 0, err
    check_main_job(out, tmp_path / "predictions")  # the test's working directory (conftest's isolated)
    assert f"ui          {team_server.uri}" in out
