"""fp16 ONNX graphs (onnxconverter-common): valid graphs, float32 I/O, ONNX Runtime CPU parity, dynamic batch."""

import shutil

import mlflow
import numpy as np
import onnx
import pytest
import torch

from sam3ops.convert import parity
from sam3ops.convert.onnx.export import GRAPHS
from sam3ops.convert.onnx.fp16 import FP32_OPS, convert_graph, is_fp16_graph
from sam3ops.inference import Segmenter
from sam3ops.inference.onnx_core import OnnxCore
from sam3ops.predict.samples import sample_image
from tests.support.cli import run_cli


@pytest.fixture(scope="module")
def onnx16(tiny_onnx, tmp_path_factory):
    """The session's fp32 graphs, converted to fp16 in a copy."""
    folder = tmp_path_factory.mktemp("onnx16") / "tiny-onnx16"
    shutil.copytree(tiny_onnx, folder)
    for name in GRAPHS:
        convert_graph(folder / name)
    return folder


def test_fp16_graphs_are_valid_with_float32_io(onnx16, tiny_onnx):
    for name in GRAPHS:
        model = onnx.load(str(onnx16 / name))
        onnx.checker.check_model(model, full_check=True)
        assert is_fp16_graph(onnx16 / name) and not is_fp16_graph(tiny_onnx / name)
        for value in [*model.graph.input, *model.graph.output]:
            assert value.type.tensor_type.elem_type != onnx.TensorProto.FLOAT16, (name, value.name)
            assert value.type.tensor_type.shape.dim[0].dim_param == "batch"
    # external data rewritten, not appended to: about half the fp32 bytes
    half = (onnx16 / "vision.onnx.data").stat().st_size / (tiny_onnx / "vision.onnx.data").stat().st_size
    assert 0.4 < half < 0.6


def _float_types(model) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    values = [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
    types = {v.name: v.type.tensor_type.elem_type for v in values}
    types.update({t.name: t.data_type for t in inferred.graph.initializer})
    return types


def test_precision_sensitive_ops_stay_float32(onnx16, tiny_onnx):
    """LayerNorm, Softmax, ReduceSum, Log, Clip: float32 in and out, with casts around them."""
    seen = set()
    for name in GRAPHS:
        model = onnx.load(str(onnx16 / name), load_external_data=False)
        types = _float_types(model)
        for node in model.graph.node:
            if node.op_type in FP32_OPS:
                seen.add(node.op_type)
                floats = [types.get(t) for t in (node.input[0], *node.output) if t]
                assert onnx.TensorProto.FLOAT16 not in floats, (name, node.op_type, node.name)
    fp32_ops = {n.op_type for g in GRAPHS for n in onnx.load(str(tiny_onnx / g), load_external_data=False).graph.node}
    assert seen == fp32_ops & set(FP32_OPS) and {"LayerNormalization", "Softmax"} <= seen


@pytest.mark.parametrize("batch", [1, 3])
def test_onnx_runtime_cpu_runs_fp16_close_to_fp32(onnx16, tiny_onnx, tiny_weights, batch):
    from transformers import Sam3Processor

    processor = Sam3Processor.from_pretrained(tiny_weights)
    photos = [sample_image(n) for n in ("astronaut", "chelsea", "coffee")][:batch]
    pixels = processor.image_processor(images=photos, return_tensors="pt").pixel_values
    text = processor.tokenizer(["person", "cat", "white mug"][:batch], padding="max_length", max_length=32,
                               return_tensors="pt")
    ref, half = OnnxCore(tiny_onnx), OnnxCore(onnx16)
    vision = ref.encode_image(pixels)
    for a, b in zip(vision, half.encode_image(pixels)):
        assert b.dtype == torch.float32 and b.shape == a.shape
        torch.testing.assert_close(b, a, rtol=2e-2, atol=2e-2)
    features = ref.encode_text(text.input_ids, text.attention_mask)
    torch.testing.assert_close(half.encode_text(text.input_ids, text.attention_mask), features, rtol=2e-2, atol=2e-2)
    da, db = ref.decode(vision, features, text.attention_mask), half.decode(vision, features, text.attention_mask)
    torch.testing.assert_close(db.pred_boxes, da.pred_boxes, rtol=2e-2, atol=2e-2)
    assert db.pred_masks.shape == da.pred_masks.shape and np.isfinite(db.pred_logits.numpy()).all()


def test_fp16_graphs_pass_the_parity_gate(onnx16, tiny_weights):
    report = parity.check(Segmenter.from_dir(tiny_weights), Segmenter.from_dir(onnx16),
                          [sample_image("astronaut"), sample_image("chelsea")])
    assert report.passed and report.nonfinite == 0 and report.mask_iou_mean > 0.99, report.to_json()


@pytest.mark.parametrize("args, fragment", [
    (["--format", "onnx", "--precision", "bf16"], "--format onnx cannot make precision 'bf16'"),
    (["--format", "fp16", "--precision", "fp32"], "--format fp16 cannot make precision 'fp32'"),
])
def test_precision_that_the_format_cannot_make(capsys, tmp_path, tiny_weights, args, fragment):
    code, _, err = run_cli(capsys, "convert", "--input", str(tiny_weights), "--output", "out", *args)
    lines = err.strip().splitlines()
    assert code == 2 and fragment in lines[-1] and lines[-1].startswith("sam3ops: error:")
    assert not (tmp_path / "out").exists()
    run = mlflow.search_runs(experiment_names=["sam3-convert"], output_format="list")[0]
    assert run.info.status == "FAILED" and fragment in run.data.tags["error"]
