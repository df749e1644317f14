"""The convert config: what auto resolves to, what it refuses (before any work), and its run params."""

import pytest

from sam3ops.convert import config
from sam3ops.convert.config import ConvertConfig
from sam3ops.errors import UsageError


def _config(**changes) -> ConvertConfig:
    return ConvertConfig(**{"input_dir": "w", "format": "onnx", "output": "o", **changes})


@pytest.mark.parametrize("fmt, precision, resolved", [
    ("onnx", "auto", "fp32"), ("onnx", "fp16", "fp16"), ("tensorrt", "auto", "fp16"), ("tensorrt", "bf16", "bf16"),
    ("fp16", "auto", "fp16"), ("bf16", "bf16", "bf16"),
])
def test_precision_resolves_per_format(fmt, precision, resolved):
    assert _config(format=fmt, precision=precision).precision == resolved


def test_tensorrt_runs_its_gate_on_cuda_and_the_rest_where_asked():
    assert _config(format="tensorrt").device == "cuda"
    assert _config(format="tensorrt", device="cuda:1").device == "cuda:1"
    assert _config(format="onnx").device == "cpu"


def test_auto_and_empty_mean_the_defaults():
    made = _config(reference="auto", parity_images=(), parity_prompts=[])
    assert made.reference is None and made.reference_dir.name == "w"
    assert made.parity_images == config.DEFAULT_PARITY_IMAGES and made.parity_prompts == config.DEFAULT_PARITY_PROMPTS
    assert _config(reference="ref").reference_dir.name == "ref"


@pytest.mark.parametrize("changes, message", [
    ({"format": "int8"}, "unknown --format 'int8'"),
    ({"format": "onnx", "precision": "bf16"}, "--format onnx cannot make precision 'bf16'"),
    ({"format": "fp16", "precision": "fp32"}, "--format fp16 cannot make precision 'fp32'"),
    ({"opset": 16}, "opset 16 is too old"),
    ({"format": "tensorrt", "min_batch": 4, "opt_batch": 2}, "batch profile min/opt/max 4/2/16 is not"),
    ({"format": "tensorrt", "min_batch": 0}, "batch profile min/opt/max 0/8/16"),
    ({"format": "tensorrt", "workspace_gb": 0}, "--workspace-gb must be positive"),
    ({"min_mask_iou": 1.5}, "--min-mask-iou must be from 0 to 1"),
    ({"max_score_diff": -0.1}, "--max-score-diff must be 0 or more"),
])
def test_bad_options_are_refused(changes, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        _config(**changes)


def test_a_meta_checkpoint_file_is_an_input_and_meta_a_layout(tmp_path):
    (tmp_path / "sam3.pt").write_bytes(b"read by the stage, not here")
    assert _config(input_dir=str(tmp_path / "sam3.pt"), format="fp32").precision == "fp32"
    assert _config(format="bf16", layout="meta").params()["layout"] == "meta"
    with pytest.raises(UsageError, match="--format onnx has no Meta layout"):
        _config(format="onnx", layout="meta")
    with pytest.raises(UsageError, match="fp32 to fp32 changes nothing") as caught:
        _config(format="fp32")  # a transformers folder to the transformers layout
    assert "--layout meta" in caught.value.hint
    with pytest.raises(UsageError, match="unknown --layout 'onnx'"):
        _config(layout="onnx")


def test_the_batch_profile_only_matters_for_tensorrt():
    assert _config(format="fp16", min_batch=9).batch == (9, 8, 16)  # not a TensorRT conversion: never checked


def test_params_carry_each_formats_own_options():
    assert set(_config(format="fp16").params()) == {"input", "format", "output", "layout", "precision", "device",
                                                     "min_mask_iou", "max_score_diff"}
    assert _config(format="onnx").params()["opset"] == config.DEFAULT_OPSET
    trt = _config(format="tensorrt", timing_cache=None).params()
    assert (trt["min_batch"], trt["opt_batch"], trt["max_batch"]) == config.DEFAULT_BATCH_PROFILE
    assert trt["timing_cache"] == "none" and trt["device"] == "cuda" and trt["precision"] == "fp16"


def test_the_config_is_frozen():
    with pytest.raises(AttributeError):
        _config().format = "fp16"
