"""The main job end to end: weights -> predict -> convert -> benchmark -> register -> promote, and reuse."""

from __future__ import annotations

import subprocess
from pathlib import Path

import mlflow
import pytest

from sam3ops.inference.prompts import load_prompt_sets
from sam3ops.predict.config import RANDOM_TOP_K
from sam3ops.predict.samples import DEFAULT_SAMPLES
from tests.conftest import REPO_ROOT, subprocess_env
from tests.support.cli import run_cli
from tests.support.pictures import assert_overlay_shows_masks_and_banner

QUICK = ["--formats", "fp16,onnx", "--batch", "1", "--iterations", "2"]
STAGES = ["benchmark", "benchmark", "benchmark", "convert", "convert", "init", "predict", "promote", "register",
          "register", "register"]


def _pipeline_runs():
    runs = mlflow.search_runs(experiment_names=["sam3-pipeline"], output_format="list")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    return parents, runs


def check_main_job(out: str, predictions: Path, samples: Path | None = None) -> str:
    """The first pipeline run made every stage as a child run and set production, and its overlays
    show masks marked RANDOM WEIGHTS (the top 3 per prompt: random weights pass no threshold);
    return the production version. ``samples``: where the run wrote the photos (``samples/`` in its
    working directory; default beside ``predictions``)."""
    samples = samples or predictions.parent / "samples"
    instances = len(DEFAULT_SAMPLES) * len(load_prompt_sets()["single_objects"]) * RANDOM_TOP_K
    assert "weights/sam3-tiny (RANDOM)" in out and f"predict     4 images, {instances} instances" in out
    assert f"4 images, top-{RANDOM_TOP_K} per prompt" in out
    for name in DEFAULT_SAMPLES:
        assert_overlay_shows_masks_and_banner(predictions / name, samples / f"{name}.png")
    parents, runs = _pipeline_runs()
    (parent,) = parents
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.tags["sam3ops.stage"] for r in children) == STAGES, out
    assert all(r.info.status == "FINISHED" for r in runs)
    assert parent.data.tags["weights_random"] == "true"
    client = mlflow.MlflowClient()
    production = client.get_model_version_by_alias("sam3", "production")
    assert str(production.version) == parent.data.tags["production_version"]
    assert production.tags["weights_random"] == "true" and production.tags["parity"] in ("pass", "reference")
    formats = {v.tags["format"] for v in client.search_model_versions("name = 'sam3'")}
    assert formats == {"fp32", "fp16", "onnx"}
    assert f"production  models:/sam3@production -> version {production.version}" in out
    return str(production.version)


@pytest.mark.slow
def test_main_job_runs_every_stage_then_reuses_them(capsys, tmp_path):
    code, out, err = run_cli(capsys, "pipeline", *QUICK)
    assert code == 0, err
    version = check_main_job(out, tmp_path / "predictions")
    assert (tmp_path / "weights" / "sam3-tiny-onnx" / "vision.onnx").is_file()

    code, out, err = run_cli(capsys, "pipeline", *QUICK)  # same inputs, same parameters
    assert code == 0, err
    lines = {tuple(line.split()[:2]): line for line in out.splitlines() if line.split()[:1] and line.split()[0] in
             ("weights", "predict", "convert", "benchmark", "register")}
    reused = [key for key, line in lines.items() if "yes" in line.split()]
    assert len(reused) == 10, out  # weights, predict, 2 converts, 3 benchmarks, 3 registrations
    parents, runs = _pipeline_runs()
    second = max(parents, key=lambda r: r.info.start_time)
    assert second.data.metrics["stages_reused"] == 10
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == second.info.run_id]
    assert [r.data.tags["sam3ops.stage"] for r in children] == ["promote"]  # nothing recomputed
    assert str(mlflow.MlflowClient().get_model_version_by_alias("sam3", "production").version) == version


@pytest.mark.slow
def test_reuse_is_refused_when_an_input_changed(capsys, tmp_path):
    code, _, err = run_cli(capsys, "pipeline", "--formats", "fp16", "--batch", "1", "--iterations", "2")
    assert code == 0, err
    (tmp_path / "weights" / "sam3-tiny-fp16" / "model.safetensors").write_bytes(b"changed")
    code, out, err = run_cli(capsys, "pipeline", "--formats", "fp16", "--batch", "1", "--iterations", "2")
    assert code == 0, err
    convert = next(line for line in out.splitlines() if line.startswith("convert"))
    assert "yes" not in convert.split()  # the fp16 folder no longer matched its manifest: converted again


@pytest.mark.slow
def test_a_conversion_under_the_gate_is_a_row_not_an_error(capsys, monkeypatch):
    """The failed convert run is in the summary with its own run id; it is neither benchmarked nor registered."""
    from sam3ops.convert.stage import convert_stage

    # The real stage with a gate no conversion passes (bf16 is never bit-exact): every step below it is real.
    monkeypatch.setattr("sam3ops.pipeline.run.convert_stage", lambda **options: convert_stage(**options,
                                                                                                min_mask_iou=1.0))
    code, out, err = run_cli(capsys, "pipeline", "--formats", "bf16", "--batch", "1", "--iterations", "1")
    assert code == 0, err
    convert = next(line.split() for line in out.splitlines() if line.startswith("convert"))
    failed = mlflow.search_runs(experiment_names=["sam3-pipeline"], output_format="list",
                                filter_string="tags.`sam3ops.stage` = 'convert'")
    assert [r.info.status for r in failed] == ["FAILED"] and failed[0].data.tags["parity"] == "fail"
    assert convert[:4] == ["convert", "bf16", failed[0].info.run_id[:12], "fail"] and "gate:" in " ".join(convert)
    assert not [line for line in out.splitlines() if line.split()[:2] in (["benchmark", "bf16"], ["register", "bf16"])]
    formats = {v.tags["format"] for v in mlflow.MlflowClient().search_model_versions("name = 'sam3'")}
    assert formats == {"fp32"}


@pytest.mark.parametrize("args,message", [
    (["--policy", "fastest"], "unknown promotion policy 'fastest'"),
    (["--policy", "latency@8", "--batch", "1"], "ranks at batch 8, which the benchmark does not run"),
    (["--formats", "gguf"], "unknown format 'gguf'"),
    (["--batch", "0"], "batch 0 is out of range"),
    (["--top-k", "0"], "top_k must be a whole number of at least 1, got 0"),
])
def test_bad_pipeline_parameters_fail_the_run_in_one_line(capsys, args, message):
    code, _, err = run_cli(capsys, "pipeline", *args)
    assert code != 0
    lines = [line for line in err.splitlines() if line.startswith("sam3ops: error:")]
    assert len(lines) == 1 and message in lines[0], err
    parents, _ = _pipeline_runs()
    assert [p.info.status for p in parents] == ["FAILED"] and message in parents[0].data.tags["error"]


@pytest.mark.slow
def test_mlflow_run_main_entry_point(tmp_path):
    """What `make demo` runs (with a shorter benchmark)."""
    done = subprocess.run(
        ["mlflow", "run", str(REPO_ROOT), "-e", "main", "--env-manager", "local", "--experiment-name",
         "sam3-pipeline", "-P", "formats=fp16,onnx", "-P", "batch=1", "-P", "iterations=2",
         "-P", f"output={tmp_path / 'predictions'}"],
        env=subprocess_env(), capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # `mlflow run` runs the entry point in the project's folder, so the photos land in its samples/.
    check_main_job(done.stdout, tmp_path / "predictions", samples=REPO_ROOT / "samples")
