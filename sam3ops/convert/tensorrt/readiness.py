"""Can this ONNX graph become a TensorRT engine? A CPU-side check, before any GPU is involved.

Findings come in two kinds. **Problems** (``ok`` is False) stop a TensorRT conversion early:

- an operator TensorRT's ONNX parser does not support, or that its support table does not list,
  or one from a custom domain (TensorRT would need a plugin registered under that name);
  If/Loop/Scan bodies and local functions are checked too;
- an int64 tensor as the data input of an operator that TensorRT supports for other types but
  not INT64 (cast it to int32 in the graph);
- an opset outside the range TensorRT's parser supports;
- a dynamic dimension other than the batch axis (0) on a graph input: the engine's optimization
  profile ranges over the batch only and fixes every other dimension from the graph.

**Warnings** are facts worth knowing that TensorRT 10 handles: int64 graph inputs and outputs
(TensorRT 10 binds INT64 I/O natively; TensorRT 8 and older cast it to INT32), int64 constants
outside the int32 range (native INT64 in TensorRT 10; clamped by TensorRT 8), and symbolic
non-batch dimensions on graph outputs (TensorRT derives them from the input shapes when it builds).

The operator table is :mod:`sam3ops.convert.tensorrt.ops` (TensorRT 10.15); restrictions the
table states in words (e.g. "``axes`` must be an initializer") are not checked, so a graph that
passes can still be refused by the parser.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sam3ops.convert.tensorrt.ops import OPSET_RANGE, SUPPORTED, TRT_VERSION, UNSUPPORTED

STANDARD_DOMAINS = ("", "ai.onnx")
_INT32 = (-(2**31), 2**31 - 1)


@dataclass
class Readiness:
    """What the check found in one graph, or in several merged (messages start with the graph)."""

    graphs: list[str]
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unsupported_ops: list[str] = field(default_factory=list)  # "Op" or "domain::Op", sorted

    @property
    def ok(self) -> bool:
        """True when nothing would stop TensorRT (warnings allowed)."""
        return not self.problems

    def to_json(self) -> dict:
        """A JSON-ready summary (what ``convert`` logs as ``trt_readiness.json``)."""
        return {"tensorrt_version_checked": TRT_VERSION, "ok": self.ok, "graphs": self.graphs,
                "unsupported_ops": self.unsupported_ops, "problems": self.problems, "warnings": self.warnings}

    @classmethod
    def merge(cls, parts: list[Readiness]) -> Readiness:
        """One report for several graphs."""
        return cls(graphs=[g for p in parts for g in p.graphs], problems=[m for p in parts for m in p.problems],
                   warnings=[m for p in parts for m in p.warnings],
                   unsupported_ops=sorted({op for p in parts for op in p.unsupported_ops}))


def _dims(value) -> list:
    shape = value.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in shape.dim]


def _int64_constants(model, folder: Path) -> dict[str, np.ndarray]:
    """Name -> flat values of every int64 initializer and Constant node, main graph and subgraphs."""
    import onnx
    from onnx import numpy_helper

    found = {}

    def visit(graph):
        for init in graph.initializer:
            if init.data_type == onnx.TensorProto.INT64:
                found[init.name] = numpy_helper.to_array(init, base_dir=str(folder)).ravel()
        for node in graph.node:
            for attr in node.attribute:
                if node.op_type == "Constant" and attr.name == "value" and attr.t.data_type == onnx.TensorProto.INT64:
                    found[node.output[0]] = numpy_helper.to_array(attr.t).ravel()
                if node.op_type == "Constant" and attr.name == "value_ints":
                    found[node.output[0]] = np.asarray(attr.ints, np.int64)
                for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                    visit(sub)

    visit(model.graph)
    return found


class _Walker:
    """Visits every node (subgraphs and local functions included) and records operator problems."""

    def __init__(self, model, prefix: str):
        import onnx

        self.onnx, self.prefix = onnx, prefix
        self.functions = {(f.domain, f.name): f for f in model.functions}
        self.problems: list[str] = []
        self.unsupported: set[str] = set()
        self.consumers: dict[str, set[str]] = defaultdict(set)

    def graph(self, graph, types: dict[str, int]) -> None:
        types = {**types, **{v.name: v.type.tensor_type.elem_type for v in
                             [*graph.input, *graph.output, *graph.value_info]},
                 **{i.name: i.data_type for i in graph.initializer}}
        for node in graph.node:
            self.node(node, types)
            for attr in node.attribute:
                for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                    self.graph(sub, types)

    def node(self, node, types: dict[str, int]) -> None:
        for name in node.input:
            self.consumers[name].add(node.op_type)
        where = f"{self.prefix}: {node.op_type} node {node.name or node.output[0]!r}"
        if (node.domain, node.op_type) in self.functions:  # a local function: TensorRT inlines it
            for inner in self.functions[(node.domain, node.op_type)].node:
                self.node(inner, {})
            return
        if node.domain not in STANDARD_DOMAINS:
            self.unsupported.add(f"{node.domain}::{node.op_type}")
            self.problems.append(f"{where} is a custom operator ({node.domain}): TensorRT needs a plugin "
                                 "registered under that name")
        elif node.op_type in UNSUPPORTED or node.op_type not in SUPPORTED:
            self.unsupported.add(node.op_type)
            listed = "marks it unsupported" if node.op_type in UNSUPPORTED else "does not list it"
            self.problems.append(f"{where}: TensorRT {TRT_VERSION}'s ONNX operator table {listed}")
        elif node.input and types.get(node.input[0]) == self.onnx.TensorProto.INT64 \
                and "INT64" not in SUPPORTED[node.op_type]:
            allowed = ", ".join(sorted(SUPPORTED[node.op_type]))
            self.problems.append(f"{where} reads int64 tensor {node.input[0]!r}; TensorRT {TRT_VERSION} supports "
                                 f"{node.op_type} on {allowed} only (cast it to int32 in the graph)")


def check_graph(path: Path) -> Readiness:
    """Check one ONNX graph (external data is not loaded, except int64 constants).

    Raises:
        WeightsError: the file is not a readable ONNX model.
    """
    import onnx

    from sam3ops.errors import WeightsError

    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
        inferred = onnx.shape_inference.infer_shapes(model)  # types of intermediate tensors
    except Exception as exc:  # noqa: BLE001 - protobuf and onnx raise many types for a bad file
        raise WeightsError(f"{path} is not a readable ONNX graph ({type(exc).__name__}: {exc})".splitlines()[0],
                           hint="export it again with `sam3ops convert --format onnx`") from None
    name = path.name
    report = Readiness(graphs=[name])
    for opset in model.opset_import:
        low, high = OPSET_RANGE
        if opset.domain in STANDARD_DOMAINS and not low <= opset.version <= high:
            report.problems.append(f"{name}: opset {opset.version} is outside TensorRT {TRT_VERSION}'s range "
                                   f"{low}-{high}")
    walker = _Walker(inferred, name)
    walker.graph(inferred.graph, {})
    report.problems += walker.problems
    report.unsupported_ops = sorted(walker.unsupported)

    initializers = {i.name for i in model.graph.initializer}
    for kind, values in (("input", model.graph.input), ("output", model.graph.output)):
        for value in values:
            if value.name in initializers:
                continue
            tensor = value.type.tensor_type
            if tensor.elem_type == onnx.TensorProto.INT64:
                report.warnings.append(f"{name}: {kind} {value.name!r} is int64: TensorRT 10 binds INT64 "
                                       "I/O natively (TensorRT 8 and older cast it to INT32)")
            if not tensor.HasField("shape"):
                (report.problems if kind == "input" else report.warnings).append(
                    f"{name}: {kind} {value.name!r} has no known shape")
                continue
            dims = _dims(value)
            dynamic = [f"{axis} ({dim})" for axis, dim in enumerate(dims) if axis > 0 and not isinstance(dim, int)]
            if dynamic and kind == "input":
                report.problems.append(f"{name}: input {value.name!r} {dims} has dynamic dimension(s) "
                                       f"{', '.join(dynamic)}: only the batch axis (0) may be dynamic")
            elif dynamic:
                report.warnings.append(f"{name}: output {value.name!r} {dims} has symbolic dimension(s) "
                                       f"{', '.join(dynamic)}: TensorRT derives them from the input shapes")

    wide = [n for n, v in _int64_constants(model, path.parent).items()
            if v.size and (v.min() < _INT32[0] or v.max() > _INT32[1])]
    if wide:
        readers = sorted({op for n in wide for op in walker.consumers.get(n, ())}) or ["nothing"]
        report.warnings.append(
            f"{name}: {len(wide)} int64 constant(s) hold values outside the int32 range (read by "
            f"{', '.join(readers)}): native INT64 in TensorRT 10; TensorRT 8 clamps them to int32")
    return report


def check_folder(folder: Path, graphs: tuple[str, ...] = ("vision.onnx", "text.onnx", "decoder.onnx")) -> Readiness:
    """Check the graphs of an ONNX folder (as ``convert --format onnx`` writes it) into one report."""
    return Readiness.merge([check_graph(Path(folder) / name) for name in graphs])
