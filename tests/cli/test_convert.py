"""`sam3ops convert`: its options are the convert config's fields, a failed gate is one line and exit 1."""

from sam3ops.convert import config
from sam3ops.convert.config import ConvertConfig
from sam3ops.convert.parity import ParityReport
from sam3ops.errors import ParityError
from sam3ops.tracking.result import FAILED, StageResult
from tests.cli.helpers import finished, invoke
from tests.support.cli import run_cli

REPORT = ParityReport(images=2, instances=120, score_max_abs_diff=0.0123, score_mean_abs_diff=0.001,
                      box_max_abs_diff_px=0.5, box_mean_abs_diff_px=0.1, mask_iou_mean=0.9912, mask_iou_min=0.9,
                      nonfinite=0, min_mask_iou=0.98, max_score_diff=0.02)


def test_the_options_are_the_config_fields_with_the_library_defaults(replace):
    stage = replace("sam3ops.convert.stage.convert_stage", finished("convert", REPORT))
    out = invoke("convert", "--input", "w", "--format", "onnx", "--output", "o", "--parity-image", "coffee").output
    given = stage.kwargs
    assert given == {"input_dir": "w", "format": "onnx", "output": "o", "layout": "transformers", "precision": "auto",
                     "opset": config.DEFAULT_OPSET, "overwrite": False, "device": "cpu",
                     "min_batch": 1, "opt_batch": 8, "max_batch": 16, "workspace_gb": config.DEFAULT_WORKSPACE_GB,
                     "timing_cache": config.DEFAULT_TIMING_CACHE, "reference": "auto",
                     "min_mask_iou": config.DEFAULT_MIN_MASK_IOU, "max_score_diff": config.DEFAULT_MAX_SCORE_DIFF,
                     "parity_images": ("coffee",), "parity_prompts": ()}
    resolved = ConvertConfig(**given)  # every option is a field: nothing is renamed on the way
    assert resolved.precision == "fp32" and resolved.reference is None and resolved.parity_prompts == ("person", "cat",
                                                                                                        "cup")
    assert out.strip() == ("w -> o (onnx): parity pass, mask IoU 0.9912, max score diff 0.0123 over 120 instances "
                           "(run run0123456789)")


def test_a_failed_gate_is_one_line_and_exit_1(capsys, replace):
    error = ParityError("bf16 conversion fails the parity gate: mask IoU 0.9000 (min 1.0)")
    replace("sam3ops.convert.stage.convert_stage",
            StageResult(stage="convert", run_id="r1", status=FAILED, outputs=REPORT, error=error))
    code, out, err = run_cli(capsys, "convert", "--input", "w", "--format", "bf16", "--output", "o")
    assert code == 1 and out == ""
    assert err.strip().splitlines() == [f"sam3ops: error: {error.one_line()}"]
    assert "must not be registered" in err
