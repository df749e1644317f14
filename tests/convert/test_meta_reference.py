"""The parity gate against Meta's own model: `convert --reference` given a Meta checkpoint."""

import sys

import mlflow
import pytest

from sam3ops.convert.stage import convert_stage
from tests.support.cli import run_cli


def _run():
    return mlflow.search_runs(experiment_names=["sam3-convert"], output_format="list",
                              order_by=["start_time DESC"])[0]


def test_gate_runs_meta_model_as_the_reference(tiny_weights, tiny_meta, tmp_path):
    """The gate compares with Meta's model (a sam3.pt file works as well as its folder). Meta's tiny
    checkpoint holds other random weights than the input, so the gate must fail, and say so."""
    result = convert_stage(input_dir=str(tiny_weights), format="fp16", output=str(tmp_path / "w16"),
                           reference=str(tiny_meta / "sam3.pt"), parity_images=["chelsea"], parity_prompts=["cat"])
    run = mlflow.get_run(result.run_id)
    assert run.data.tags["parity_reference"] == "meta"
    assert result.status == "FAILED" and run.info.status == "FAILED" and run.data.tags["parity"] == "fail"
    assert result.outputs.instances > 0 and result.outputs.mask_iou_mean < 0.98
    assert [a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)] == ["parity.json"]


def test_a_meta_folder_is_a_meta_reference(tiny_meta):
    from sam3ops.convert.stage import _reference

    with mlflow.start_run() as run:
        checkpoint, device = _reference(tiny_meta, "cpu")
    assert checkpoint == tiny_meta / "sam3.pt" and device == "cpu"
    assert mlflow.get_run(run.info.run_id).data.tags["parity_reference"] == "meta"


@pytest.mark.parametrize("case, fragment", [
    ("garbage", "is not a Meta SAM3 checkpoint"),
    ("no package", "missing sam3"),
])
def test_bad_meta_reference_is_one_line_a_failed_run_and_nothing_written(capsys, tmp_path, tiny_weights, tiny_meta,
                                                                        monkeypatch, case, fragment):
    reference = tmp_path / "sam3.pt"
    if case == "garbage":
        reference.write_bytes(b"not a checkpoint" * 256)
    else:
        reference = tiny_meta
        monkeypatch.setitem(sys.modules, "sam3", None)  # as if Meta's package were not installed
    code, _, err = run_cli(capsys, "convert", "--input", str(tiny_weights), "--format", "fp16",
                           "--output", str(tmp_path / "out"), "--reference", str(reference))
    lines = [line for line in err.splitlines() if line.startswith("sam3ops: error:")]
    assert code == 1 and len(lines) == 1 and fragment in lines[0], err
    assert not (tmp_path / "out").exists()
    run = _run()
    assert run.info.status == "FAILED" and fragment in run.data.tags["error"]


def test_transformers_weights_agree_with_meta_model_on_the_same_weights(tiny_weights, tmp_path):
    """The tiny preset against Meta's model holding the same weights (mapped to Meta's layout): the
    gate's comparison across the two implementations passes, masks included (TorchCore runs the
    geometry encoder's CLS token into the prompt as Meta's model does)."""
    from sam3ops.convert import parity
    from sam3ops.inference import Segmenter
    from sam3ops.predict.samples import sample_image
    from tests.support.meta import write_meta_from_transformers

    meta = Segmenter.from_dir(write_meta_from_transformers(tiny_weights, tmp_path / "meta"))
    report = parity.check(meta, Segmenter.from_dir(tiny_weights), [sample_image("chelsea")], ["cat", "person"])
    assert report.nonfinite == 0 and report.instances == 2 * 20  # every query of both prompts, matched
    assert report.score_max_abs_diff <= report.max_score_diff and report.box_max_abs_diff_px < 1.0
    assert report.passed and report.mask_iou_mean >= 0.99, report.to_json()


@pytest.mark.slow
@pytest.mark.parametrize("format", ["fp16", "bf16", "onnx"])
def test_cli_conversion_of_metas_checkpoint_passes_the_gate_against_it(capsys, tiny_meta, tmp_path, format):
    """`sam3ops convert --input sam3.pt --format F --reference sam3.pt`: the conversion, run by this
    project's runtime, against Meta's model on the same checkpoint (the default photos and prompts)."""
    checkpoint = str(tiny_meta / "sam3.pt")
    code, out, err = run_cli(capsys, "convert", "--input", checkpoint, "--format", format, "--reference", checkpoint,
                             "--output", str(tmp_path / "out"))
    assert code == 0 and "parity pass" in out, err
    run = _run()
    assert run.info.status == "FINISHED" and run.data.tags["parity"] == "pass"
    assert run.data.tags["parity_reference"] == "meta"
    assert run.data.metrics["parity_mask_iou"] >= 0.98 and run.data.metrics["parity_nonfinite"] == 0
    assert (tmp_path / "out" / ("decoder.onnx" if format == "onnx" else "model.safetensors")).is_file()
