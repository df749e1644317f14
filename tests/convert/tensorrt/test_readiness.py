"""The TensorRT readiness check: the tiny preset's real graphs, and small graphs with planted problems."""

import json

import mlflow
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from sam3ops.convert.tensorrt import readiness as trt_readiness
from sam3ops.convert.tensorrt.readiness import Readiness, check_folder, check_graph
from sam3ops.errors import WeightsError
from tests.support.cli import run_cli


def _save(tmp_path, nodes, inputs, outputs, *, initializers=(), opsets=(("", 17),), name="g.onnx"):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    model.ir_version = 8
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def _float(name, dims):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


def test_tiny_preset_graphs_are_ready(tiny_onnx):
    report = check_folder(tiny_onnx)
    assert report.ok, report.problems
    assert report.graphs == ["vision.onnx", "text.onnx", "decoder.onnx"] and report.unsupported_ops == []
    joined = "\n".join(report.warnings)
    assert "text.onnx: input 'input_ids' is int64" in joined  # a warning, not a problem: TRT 10 takes INT64 I/O
    assert "decoder.onnx: output 'pred_masks'" in joined and "symbolic" in joined
    data = report.to_json()
    assert data["ok"] is True and data["tensorrt_version_checked"] == "10.15"


def test_planted_unsupported_operators_are_flagged(tmp_path):
    x, y = _float("x", ["batch", 4]), _float("y", ["batch", 4])
    then_branch = helper.make_graph(  # an If body: the check walks into subgraphs
        [helper.make_node("Col2Im", ["x", "shape", "block"], ["inner"], name="in_subgraph")], "then", [],
        [_float("inner", ["batch", 4])])
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="fine"),
        helper.make_node("MyFancyOp", ["r"], ["c"], name="planted_custom", domain="com.example"),
        helper.make_node("Unique", ["c"], ["u"], name="planted_unique"),
        helper.make_node("If", ["cond"], ["y"], name="branch", then_branch=then_branch, else_branch=then_branch),
    ]
    path = _save(tmp_path, nodes, [x, helper.make_tensor_value_info("cond", TensorProto.BOOL, [])], [y],
                 opsets=(("", 17), ("com.example", 1)))
    report = check_graph(path)
    assert not report.ok
    assert report.unsupported_ops == ["Col2Im", "Unique", "com.example::MyFancyOp"]
    text = "\n".join(report.problems)
    assert "MyFancyOp node 'planted_custom' is a custom operator (com.example)" in text
    assert "Unique node 'planted_unique': TensorRT 10.15's ONNX operator table marks it unsupported" in text
    assert "Col2Im node 'in_subgraph'" in text
    assert "Relu" not in text


def test_int64_input_and_dynamic_non_batch_dim(tmp_path):
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"])  # seq: dynamic, not batch
    weight = numpy_helper.from_array(np.ones((8, 2), np.int64), "w")
    nodes = [helper.make_node("MatMul", ["ids", "w"], ["out"], name="int_matmul")]
    path = _save(tmp_path, nodes, [ids], [helper.make_tensor_value_info("out", TensorProto.INT64, ["batch", "seq", 2])],
                 initializers=[weight])
    report = check_graph(path)
    problems = "\n".join(report.problems)
    assert "input 'ids' ['batch', 'seq'] has dynamic dimension(s) 1 (seq): only the batch axis (0) may be dynamic" \
        in problems
    assert "MatMul node 'int_matmul' reads int64 tensor 'ids'" in problems and "BF16, FP16, FP32 only" in problems
    warnings = "\n".join(report.warnings)
    assert "input 'ids' is int64" in warnings and "output 'out' is int64" in warnings
    assert "output 'out' ['batch', 'seq', 2] has symbolic dimension(s) 1 (seq)" in warnings


def test_int64_constants_past_int32_and_old_opset(tmp_path):
    starts = numpy_helper.from_array(np.array([1], np.int64), "starts")
    ends = numpy_helper.from_array(np.array([np.iinfo(np.int64).max], np.int64), "ends")  # "to the end"
    nodes = [helper.make_node("Slice", ["x", "starts", "ends"], ["y"], name="slice")]
    path = _save(tmp_path, nodes, [_float("x", ["batch", 4])], [_float("y", ["batch", 3])],
                 initializers=[starts, ends], opsets=(("", 7),))
    report = check_graph(path)
    assert report.problems == ["g.onnx: opset 7 is outside TensorRT 10.15's range 9-24"]
    assert any("1 int64 constant(s) hold values outside the int32 range (read by Slice)" in w for w in report.warnings)


def test_unreadable_graph_is_one_line(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"this is not protobuf at all" * 10)
    with pytest.raises(WeightsError, match="is not a readable ONNX graph") as info:
        check_graph(path)
    assert "\n" not in info.value.one_line()


@pytest.mark.slow
def test_readiness_problems_do_not_fail_an_onnx_conversion(capsys, monkeypatch, tiny_weights):
    """`convert --format onnx --precision fp16`: readiness is logged; a problem in it does not fail the run."""
    real = trt_readiness.check_folder
    planted = Readiness(graphs=["planted.onnx"], problems=["planted.onnx: Foo node 'x' is a custom operator"],
                        unsupported_ops=["com.example::Foo"])
    monkeypatch.setattr(trt_readiness, "check_folder", lambda folder: Readiness.merge([real(folder), planted]))
    code, out, err = run_cli(capsys, "convert", "--input", str(tiny_weights), "--format", "onnx",
                             "--precision", "fp16", "--output", "o16")
    assert code == 0, err
    assert "parity pass" in out
    run = mlflow.search_runs(experiment_names=["sam3-convert"], output_format="list")[0]
    assert run.info.status == "FINISHED" and run.data.params["precision"] == "fp16"
    assert run.data.tags["trt_ready"] == "false" and run.data.metrics["trt_unsupported_ops"] == 1
    logged = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/trt_readiness.json")
    assert logged["graphs"] == ["vision.onnx", "text.onnx", "decoder.onnx", "planted.onnx"]
    assert logged["ok"] is False and logged["problems"] == planted.problems
    assert json.loads(json.dumps(logged)) == logged
