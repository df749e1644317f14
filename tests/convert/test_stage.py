"""The convert stage (fp16/bf16) as a tracked run with its fidelity gate, through the CLI and its function."""

import shutil
import subprocess

import mlflow
import numpy as np
import pytest

from sam3ops.convert import parity
from sam3ops.convert.stage import convert_stage
from sam3ops.errors import ParityError, UsageError
from sam3ops.inference.result import Result
from tests.conftest import REPO_ROOT, subprocess_env
from tests.support.cli import run_cli
from tests.support.registry import logged_weights


def _run():
    return mlflow.search_runs(experiment_names=["sam3-convert"], output_format="list",
                              order_by=["start_time DESC"])[0]


def test_fp16_conversion_tracked_and_gated(capsys, tmp_path, tiny_weights):
    code, out, err = run_cli(capsys, "convert", "--input", str(tiny_weights), "--format", "fp16", "--output", "w16")
    assert code == 0, err
    assert "parity pass" in out
    run = _run()
    assert run.info.status == "FINISHED"
    tags, metrics, params = run.data.tags, run.data.metrics, run.data.params
    assert tags["parity"] == "pass" and tags["format"] == "fp16" and tags["weights_random"] == "true"
    assert len(tags["source_commit"]) == 40
    assert params["format"] == "fp16" and params["input"] == str(tiny_weights)
    assert metrics["parity_mask_iou"] >= 0.98 and metrics["parity_nonfinite"] == 0
    assert metrics["parity_instances"] == 2 * 3 * 20  # 2 photos x 3 prompts x every query
    assert metrics["seconds"] > 0 and metrics["peak_rss_mb"] > 100 and 0 < metrics["output_mb"] < 10
    listed = logged_weights(run.info.run_id)  # the run's files, in the logged model it made
    assert "weights/model.safetensors" in listed and "weights/manifest.json" in listed
    report = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/parity.json")
    assert report["passed"] is True and report["prompts"] == ["person", "cat", "cup"]


def test_failing_gate_ends_failed_without_artifact(capsys, tmp_path, tiny_weights):
    code, _, err = run_cli(capsys, "convert", "--input", str(tiny_weights), "--format", "bf16", "--output", "wbf",
                           "--min-mask-iou", "1.0")
    line = err.strip().splitlines()[-1]
    assert code == 1 and "fails the parity gate" in line and "must not be registered" in line
    run = _run()
    assert run.info.status == "FAILED" and run.data.tags["parity"] == "fail"
    assert run.data.metrics["parity_mask_iou"] < 1.0
    assert [a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)] == ["parity.json"]
    assert "model_id" not in run.data.tags  # no logged model either: nothing to register


def test_a_failed_gate_is_a_failed_result_with_its_run(tiny_weights, tmp_path):
    """Not an exception: the result carries the run id, the report and the error; the run itself is FAILED."""
    result = convert_stage(input_dir=str(tiny_weights), format="bf16", output=str(tmp_path / "wbf"),
                           min_mask_iou=1.0, parity_images=["astronaut"], parity_prompts=["person"])
    assert result.status == "FAILED" and not result.ok and isinstance(result.error, ParityError)
    assert result.outputs.mask_iou_mean < 1.0 and not result.outputs.passed
    run = mlflow.get_run(result.run_id)
    assert run.info.status == "FAILED" and run.data.tags["parity"] == "fail"
    assert run.data.tags["error"] == result.error.one_line()
    with pytest.raises(ParityError):
        result.raise_for_status()


def test_a_passing_conversion_is_a_finished_result(tiny_weights, tmp_path):
    result = convert_stage(input_dir=str(tiny_weights), format="fp16", output=str(tmp_path / "w16"),
                           parity_images=["astronaut"], parity_prompts=["person"])
    assert result.ok and result.raise_for_status() is result and result.outputs.passed and not result.reused
    assert mlflow.get_run(result.run_id).data.params["precision"] == "fp16"


def test_options_are_validated_inside_the_run(tiny_weights):
    with pytest.raises(UsageError, match="opset 16 is too old"):
        convert_stage(input_dir=str(tiny_weights), format="onnx", output="o", opset=16)
    run = _run()
    assert run.info.status == "FAILED" and "opset 16 is too old" in run.data.tags["error"]


def test_nan_fails_the_gate():
    def result(scores):
        masks = np.zeros((len(scores), 4, 4), bool)
        return Result("x", ["cat"], masks, np.zeros((len(scores), 4), np.float32), np.array(scores, np.float32),
                      ["cat"] * len(scores), np.zeros((4, 4), np.uint16))

    good = parity.compare_results([result([0.5, 0.4])], [result([0.5, 0.41])])
    assert good.passed and good.mask_iou_mean == 1.0 and abs(good.score_max_abs_diff - 0.01) < 1e-6
    bad = parity.compare_results([result([0.5, 0.4])], [result([0.5, float("nan")])])
    assert bad.nonfinite == 1 and not bad.passed
    lost = parity.compare_results([result([0.5, 0.4])], [result([0.5])])
    assert lost.nonfinite >= 1 and not lost.passed


@pytest.mark.parametrize(
    "setup, args, fragment, exit_code",
    [
        (None, ["--input", "missing"], "weights folder missing not found", 1),
        (None, ["--format", "int8"], "Invalid value for '--format'", 2),
        ("full_output", [], "is not empty", 2),
        ("corrupt", [], "not a readable safetensors file", 1),
    ],
)
def test_bad_inputs(capsys, tmp_path, tiny_weights, setup, args, fragment, exit_code):
    source = tiny_weights
    if setup == "full_output":
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "x").write_text("keep")
    if setup == "corrupt":
        source = tmp_path / "corrupt"
        shutil.copytree(tiny_weights, source)
        data = (source / "model.safetensors").read_bytes()
        (source / "model.safetensors").write_bytes(data[:1000])
    base = {"--input": str(source), "--format": "fp16", "--output": "out"}
    for key, value in zip(args[::2], args[1::2]):
        base[key] = value
    code, _, err = run_cli(capsys, "convert", *[x for kv in base.items() for x in kv])
    assert code == exit_code and fragment in err
    if setup == "full_output":
        assert (tmp_path / "out" / "x").read_text() == "keep"
    elif exit_code == 1:
        assert not (tmp_path / "out").exists()
        assert _run().info.status == "FAILED"


@pytest.mark.slow
def test_mlflow_run_convert_entry_point(tmp_path, tiny_weights):
    done = subprocess.run(
        ["mlflow", "run", str(REPO_ROOT), "-e", "convert", "--env-manager", "local", "--experiment-name",
         "sam3-convert", "-P", f"input={tiny_weights}", "-P", "format=fp16", "-P", f"output={tmp_path / 'w16'}"],
        env=subprocess_env(), capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run = _run()
    assert run.info.status == "FINISHED" and run.data.tags["parity"] == "pass"
    assert run.data.tags["mlflow.project.entryPoint"] == "convert"
