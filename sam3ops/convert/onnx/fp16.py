"""fp16 ONNX graphs: an exported fp32 graph rewritten to float16 by onnxconverter-common.

``float16.convert_float_to_float16`` (Microsoft's converter, the one ONNX Runtime's docs point to)
turns float initializers, constants and tensor types to float16, with ``keep_io_types=True`` so the
graph still takes and returns float32 (the inference cores feed float32). Two things it does not do
by itself are handled here:

- ``Cast`` nodes that cast *to* float32 keep doing so while the converter marks their outputs
  float16, which makes the graph invalid (seen on SAM3's decoder): those nodes go on its node block
  list, so it wraps them in casts instead;
- it works on an in-memory model and, by default, runs shape inference on it, which copies the
  whole model twice more (a full-preset graph with external data then peaks at ~5x its size). Here
  shape inference runs on the graph without its weights, the weights are loaded after, and the
  result is written back as external data: about 1.5x the fp32 weights at the peak.

Values beyond float16's range are clamped to +-65504 (not the converter's default of 1e4).

Operators whose float16 form loses accuracy or overflows (:data:`FP32_OPS`: normalisation, softmax,
sums, logarithms, clipping) stay in float32 with casts around them, beside the converter's own
block list: with its defaults they would run in float16, and a strongly typed TensorRT engine
(TensorRT 11) runs exactly the types of the graph. NVIDIA's ModelOpt AutoCast chooses such ops
from measured ranges instead; this fixed list needs no calibration data.
"""

from __future__ import annotations

import warnings
from pathlib import Path

FP16_MAX = 65504.0
FP32_OPS = ("LayerNormalization", "Softmax", "ReduceSum", "Log", "Clip")  # kept in float32


def is_fp16_graph(path: Path) -> bool:
    """True when the graph's weights are mostly float16 (as :func:`convert_graph` writes them: the
    weights of :data:`FP32_OPS` stay float32)."""
    import math

    import onnx

    model = onnx.load(str(path), load_external_data=False)
    sizes = {onnx.TensorProto.FLOAT16: 0, onnx.TensorProto.FLOAT: 0}
    for init in model.graph.initializer:
        if init.data_type in sizes:
            sizes[init.data_type] += math.prod(init.dims)
    return sizes[onnx.TensorProto.FLOAT16] > sizes[onnx.TensorProto.FLOAT]


def convert_graph(path: Path) -> None:
    """Rewrite the fp32 graph at ``path`` (and its ``.data`` file, if any) as fp16, in place.

    Float32 inputs and outputs stay float32. The result passes ``onnx.checker``'s full check and
    shape inference (same checks as the export). Call it on a staged copy: a failure halfway
    leaves the files half written.
    """
    import onnx
    from onnxconverter_common import float16

    from sam3ops.convert.onnx.graph import check_graph

    path = Path(path)
    data = path.with_name(path.name + ".data")
    external = data.is_file()
    mode = path.stat().st_mode & 0o777
    # Types of every intermediate tensor, inferred on the graph alone (weights stay on disk) ...
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path), load_external_data=False))
    if external:  # ... then the weights, once
        onnx.external_data_helper.load_external_data_for_model(model, str(path.parent))
    to_float = [n.name for n in model.graph.node
                if n.op_type == "Cast" and any(a.name == "to" and a.i == onnx.TensorProto.FLOAT for a in n.attribute)]
    # An Identity copying a weight that a float32 op also reads (TorchScript's export shares LayerNorm
    # biases so) would get a float16 output over a float32 input, an invalid graph: it stays float32.
    fp32_inputs = {name for n in model.graph.node if n.op_type in FP32_OPS for name in n.input}
    to_float += [n.name for n in model.graph.node
                 if n.op_type == "Identity" and {*n.input, *n.output} & fp32_inputs]
    # A weight such a node reads stays float32, also for another node reading it directly (the
    # geometry encoder's box projection reads a bias the export shares so): that node stays float32.
    weights, blocked = {init.name for init in model.graph.initializer}, set(to_float)
    kept = {name for n in model.graph.node if n.name in blocked for name in n.input} & weights
    to_float += [n.name for n in model.graph.node
                 if n.name not in blocked and n.op_type not in FP32_OPS and set(n.input) & kept]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one "will be truncated" warning per clamped tensor: noise here
        model = float16.convert_float_to_float16(model, keep_io_types=True, max_finite_val=FP16_MAX,
                                                 op_block_list=[*float16.DEFAULT_OP_BLOCK_LIST, *FP32_OPS],
                                                 node_block_list=to_float, disable_shape_infer=True)
    path.unlink()
    if external:
        data.unlink()  # onnx appends to an existing data file
    onnx.save_model(model, str(path), save_as_external_data=external, location=data.name if external else None)
    del model
    for written in (path, data) if external else (path,):
        written.chmod(mode)  # onnx creates the data file owner-only; keep the export's permissions
    check_graph(path)
