"""Every registered version is an MLflow pyfunc model: ``mlflow.pyfunc.load_model(...).predict`` and
``mlflow models serve`` answer with the registered weights' results."""

from __future__ import annotations

import base64
import subprocess

import mlflow
import pytest
import requests

from tests.conftest import subprocess_env
from tests.support.registry import decode_masks, image_bytes, point_at
from tests.support.servers import free_port, stop_process_group, wait_for_http

pytestmark = pytest.mark.slow


def test_pyfunc_predicts_what_the_weights_do(server, sources, published, monkeypatch):
    from sam3ops.inference.segmenter import Segmenter
    from sam3ops.predict.samples import sample_image

    point_at(monkeypatch, server.uri)
    name, _ = published
    model = mlflow.pyfunc.load_model(f"models:/{name}@production")
    image = image_bytes()
    [prediction] = model.predict({"image": image, "prompts": ["person", "cup"]}, params={"score_threshold": 0.0})
    assert (prediction["height"], prediction["width"]) == (512, 512)
    n = len(prediction["labels"])
    assert n > 0 and len(prediction["scores"]) == len(prediction["boxes"]) == len(prediction["masks"]) == n
    assert set(prediction["labels"]) <= {"person", "cup"} and all(len(b) == 4 for b in prediction["boxes"])
    assert decode_masks(prediction).shape == (n, 512, 512)
    # The same instances as the folder that was registered, run directly.
    direct = Segmenter.from_dir(sources["fp16_dir"], device="cpu", precision="fp32", score_threshold=0.0)
    [result] = direct.segment([sample_image("astronaut")], ["person", "cup"])
    assert list(result.labels) == prediction["labels"]
    # base64 text is taken too, and the default threshold keeps fewer instances
    [b64] = model.predict({"image": base64.b64encode(image).decode(), "prompts": ["person", "cup"]})
    assert len(b64["labels"]) <= n


def test_serve_answers_invocations(server, published, tmp_path, monkeypatch):
    point_at(monkeypatch, server.uri)  # mlflow hands its registry URI to subprocesses in the environment
    name, _ = published
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as handle:
        proc = subprocess.Popen(
            ["mlflow", "models", "serve", "-m", f"models:/{name}@production", "--env-manager", "local",
             "--host", "127.0.0.1", "-p", str(port)],
            env=subprocess_env(MLFLOW_TRACKING_URI=server.uri), stdout=handle, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ping", timeout=180, proc=proc, log=log)
        body = {"dataframe_records": [{"image": base64.b64encode(image_bytes()).decode(), "prompts": ["person"]},
                                      {"image": base64.b64encode(image_bytes("chelsea")).decode(),
                                       "prompts": ["cat", "cup"]}],
                "params": {"score_threshold": 0.0}}
        response = requests.post(f"http://127.0.0.1:{port}/invocations", json=body, timeout=120)
        assert response.status_code == 200, response.text[:2000]
        first, second = response.json()["predictions"]
        assert first["prompts"] == ["person"] and second["prompts"] == ["cat", "cup"]
        assert len(first["masks"]) > 0 and decode_masks(first).shape[1:] == (first["height"], first["width"])
        bad = requests.post(f"http://127.0.0.1:{port}/invocations",
                            json={"dataframe_records": [{"image": "bm90IGFuIGltYWdl", "prompts": ["cat"]}]},
                            timeout=60)
        assert bad.status_code >= 400 and "neither image bytes nor base64" in bad.text
    finally:
        stop_process_group(proc)
