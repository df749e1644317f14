"""Every registered version is an MLflow pyfunc model: ``mlflow.pyfunc.load_model(...).predict`` and
``mlflow models serve`` answer with the registered weights' results."""

from __future__ import annotations

import base64
import subprocess
import sys
import uuid

import mlflow
import numpy as np
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


def test_registering_prints_no_mlflow_warnings(server, sources, tmp_path, monkeypatch):
    """`sam3ops init` (which logs the model) and `sam3ops register` as a user runs them: no warning
    about type hints, the input example or the photo datasets, and the version carries the signature
    and a small input example (a 32x32 PNG, one prompt)."""
    import re
    import shutil

    point_at(monkeypatch, server.uri)
    name = f"sam3-warnings-{uuid.uuid4().hex[:8]}"
    # Other files than the package's source (seed 1): init logs a model of its own.
    shutil.copytree(sources["tiny_dir"], tmp_path / "tiny")
    output = ""
    for argv in (["init", "--preset", "tiny", "--seed", "1", "--force", "--output", str(tmp_path / "tiny")],
                 ["register", "--run-id", "RUN", "--name", name]):
        if argv[0] == "register":
            argv[2] = re.search(r"\(run ([0-9a-f]{32})\)", output).group(1)
        done = subprocess.run([sys.executable, "-W", "always::UserWarning", "-m", "sam3ops", *argv],
                              env=subprocess_env(MLFLOW_TRACKING_URI=server.uri), cwd=tmp_path,
                              capture_output=True, text=True, timeout=600)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-4000:]
        # MLflow's INFO lines mention the example ("Validating input example against model signature"):
        # what must not appear is a warning (warnings.warn's "UserWarning:", logging's "WARNING").
        for warned in ("Warning:", "WARNING", "type hints", "input example was not provided", "Failed to"):
            assert warned not in output, output[-4000:]
    info = mlflow.models.get_model_info(f"models:/{name}/1")
    assert [c.name for c in info.signature.inputs.inputs] == ["image", "prompts"]
    assert [p.name for p in info.signature.params.params] == ["score_threshold", "mask_threshold"]
    example = info.saved_input_example_info
    assert example and example["type"] == "dataframe", example
    where = mlflow.MlflowClient().get_model_version_download_uri(name, "1")
    serving_input = mlflow.artifacts.load_text(f"{where}/{example['serving_input_path']}")
    assert len(serving_input) < 8000 and '"prompts"' in serving_input


# Each malformed request (one row of dataframe_records) and what its one-line 400 says.
MALFORMED = {
    "no prompts": ({"image": "PHOTO"}, "no prompts"),
    "empty prompt list": ({"image": "PHOTO", "prompts": []}, "`prompts` is an empty list"),
    "blank prompt": ({"image": "PHOTO", "prompts": ["cat", "  "]}, "prompt 2 is empty or blank"),
    "not an image": ({"image": "bm90IGFuIGltYWdl", "prompts": ["cat"]}, "neither image bytes nor base64"),
    "no image": ({"prompts": ["cat"]}, "no image"),
}


def test_serve_answers_invocations(server, sources, published, tmp_path, monkeypatch):
    from sam3ops.inference.segmenter import Segmenter
    from sam3ops.predict.samples import sample_image
    from sam3ops.registry.pyfunc import encode_result

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
        # The same output as the registered folder run directly.
        direct = Segmenter.from_dir(sources["fp16_dir"], device="cpu", precision="fp32", score_threshold=0.0)
        expected = encode_result(direct.segment([sample_image("astronaut")], ["person"])[0])
        assert {k: first[k] for k in ("height", "width", "prompts", "labels")} == \
            {k: expected[k] for k in ("height", "width", "prompts", "labels")}
        assert first["scores"] == pytest.approx(expected["scores"], abs=1e-4)
        assert np.asarray(first["boxes"]) == pytest.approx(np.asarray(expected["boxes"]), abs=0.05)
        assert (decode_masks(first) != decode_masks(expected)).mean() < 1e-3
        photo = base64.b64encode(image_bytes()).decode()
        for case, (row, says) in MALFORMED.items():
            row = {k: photo if v == "PHOTO" else v for k, v in row.items()}
            bad = requests.post(f"http://127.0.0.1:{port}/invocations", json={"dataframe_records": [row]},
                                timeout=60)
            assert bad.status_code == 400, (case, bad.status_code, bad.text[:2000])
            error = bad.json()
            assert error["error_code"] == "INVALID_PARAMETER_VALUE", (case, error)
            message = error["message"]
            assert message.startswith("row 0: ") and says in message and "\n" not in message, (case, message)
            # One line, never the input: no image bytes, no "Failed to predict data '<the input>'", no traceback.
            assert photo[:64] not in bad.text and "Failed to predict" not in message, (case, bad.text[:2000])
            assert set(error) <= {"error_code", "message", "sqlstate", "error_class"} and len(message) < 200, error
    finally:
        stop_process_group(proc)


def test_format_precision_and_manifest_sha256_come_from_the_mlmodels_metadata(tmp_path):
    """Logged models carry them in the MLmodel's metadata (no model_config: MLflow would log it as
    params of the stage's run); a folder outside a model gives {} (model_config then decides)."""
    from sam3ops.registry.pyfunc import shipped_metadata

    weights = tmp_path / "model" / "artifacts" / "weights"
    weights.mkdir(parents=True)
    assert shipped_metadata(weights) == {}
    (tmp_path / "model" / "MLmodel").write_text(
        "flavors: {}\nmetadata:\n  sam3ops:\n    format: fp16\n    precision: fp16\n    manifest_sha256: abc\n")
    assert shipped_metadata(weights) == {"format": "fp16", "precision": "fp16", "manifest_sha256": "abc"}
