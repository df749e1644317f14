"""ONNX export: the inference core's three graphs (vision encoder, text encoder, decoder).

Each graph is exported on its own with a dynamic batch axis, then passes ``onnx.checker``'s full
check and shape inference. The encoders go through the dynamo exporter, which traces with fake
tensors: no real activations, so the full preset's vision encoder exports at 2.9 GB peak RSS
instead of ~11 GB with the TorchScript tracer (measured). Their weights are written as external
data beside the graph (``*.onnx.data``). The decoder still goes through the TorchScript exporter,
though its module now traces under ``torch.export`` too (:func:`_static_coords`, which the
AOTInductor packages need): moving it to dynamo changes the graph that the float16 rewrite and the
TensorRT readiness check were validated on. The output folder also carries the config, processor
and tokenizer files, so the Segmenter can run it.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from sam3ops.checkpoint.layout import ONNX_GRAPHS
from sam3ops.convert.config import DEFAULT_OPSET, FORMAT_PRECISIONS, MIN_OPSET
from sam3ops.convert.onnx.graph import check_graph
from sam3ops.inference.core import VisionFeatures

log = logging.getLogger(__name__)

VISION_OUTPUTS = list(VisionFeatures._fields)
TEXT_INPUTS = ["input_ids", "attention_mask"]
DECODER_INPUTS = [*VISION_OUTPUTS, "text_features", "attention_mask"]
DECODER_OUTPUTS = ["pred_masks", "pred_boxes", "pred_logits", "presence_logits", "semantic_seg"]
GRAPHS = ONNX_GRAPHS
PRECISIONS = FORMAT_PRECISIONS["onnx"]


class _Vision(torch.nn.Module):
    def __init__(self, core):
        super().__init__()
        self.core = core
        self.model = core.model  # registered, so the exporter sees the weights as parameters

    def forward(self, pixel_values):
        return tuple(self.core.encode_image.__wrapped__(self.core, pixel_values))


class _Text(torch.nn.Module):
    def __init__(self, core):
        super().__init__()
        self.core = core
        self.model = core.model  # registered, so the exporter sees the weights as parameters

    def forward(self, input_ids, attention_mask):
        return self.core.encode_text.__wrapped__(self.core, input_ids, attention_mask)


@contextlib.contextmanager
def _static_coords(decoder, height: int, width: int) -> Iterator[None]:
    """The DETR decoder's coordinate grids from the static feature size instead of from tensors.

    transformers keeps the feature map's size as a tensor (``spatial_shapes``) and builds the box
    position bias with ``torch.arange(0, height_tensor)``: to ``torch.export`` that length is data,
    an unbacked symbol, and the bias's ``height * width`` can then not be proven equal to the
    attention's key length (``Eq(u0*u1, 256)`` in its ``view``). The size is the shape of the
    feature map, static in every export: the same grids, built from plain ints.
    """
    def coords(_height, _width, dtype, device):
        return (torch.arange(height, device=device, dtype=dtype) / height,
                torch.arange(width, device=device, dtype=dtype) / width)

    decoder._get_coords = coords  # an instance attribute hides the (cached) method for this call only
    try:
        yield
    finally:
        del decoder._get_coords


class _Decoder(torch.nn.Module):
    def __init__(self, core):
        super().__init__()
        self.core = core
        self.model = core.model  # registered, so the exporter sees the weights as parameters

    def forward(self, fpn_0, fpn_1, fpn_2, pos_0, pos_1, pos_2, text_features, attention_mask):
        vision = VisionFeatures(fpn_0, fpn_1, fpn_2, pos_0, pos_1, pos_2)
        with _static_coords(self.model.detr_decoder, *fpn_2.shape[-2:]):
            return tuple(self.core.decode.__wrapped__(self.core, vision, text_features, attention_mask))


def _padding_box_embedding(self, boxes, boxes_mask, boxes_labels, vision_features):
    """The geometry encoder's ``_encode_boxes`` in a traced decoder: zeros for the one padding box.

    TorchCore's only box is the padding box (see ``_padding_box`` in :mod:`sam3ops.inference.core`).
    transformers pools it with roi_align over ``boxes.unbind(0)``, a list whose length both tracers
    fix at the example batch (TorchScript silently, torch.export by refusing the dynamic batch); and
    what it encodes for that box never reaches an output: ``concat_padded_sequences`` writes the CLS
    token over the masked box's slot. Zeros sized from the inputs keep the batch axis dynamic.
    """
    if boxes.shape[1] != 1:
        raise ValueError("the decoder export traces one padding box per pair, no real boxes")
    return vision_features.new_zeros(*boxes.shape[:2], self.hidden_size), boxes_mask


@contextlib.contextmanager
def traceable_geometry_encoder() -> Iterator[None]:
    """transformers' SAM3 geometry encoder with :func:`_padding_box_embedding`, while a decoder is traced."""
    from unittest import mock

    from transformers.models.sam3 import modeling_sam3

    with mock.patch.object(modeling_sam3.Sam3GeometryEncoder, "_encode_boxes", _padding_box_embedding):
        yield


@dataclass
class OnnxExport:
    """What ``export_onnx`` wrote."""

    output: Path
    graphs: list[Path]
    opset: int
    bytes_written: int


def _export(module, args, path: Path, inputs: list[str], outputs: list[str], opset: int, *,
            dynamo: bool) -> None:
    import contextlib
    import io
    import warnings

    # The exporters narrate each step and warn about Python control flow per layer: noise here.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if dynamo:
            batch = torch.export.Dim("batch", min=1, max=1024)
            torch.onnx.export(module, args, str(path), dynamo=True, opset_version=max(opset, 18),
                              input_names=inputs, output_names=outputs, external_data=True,
                              dynamic_shapes=tuple({0: batch} for _ in args))
        else:
            torch.onnx.export(module, args, str(path), dynamo=False, opset_version=opset, input_names=inputs,
                              output_names=outputs, dynamic_axes={name: {0: "batch"} for name in inputs + outputs})
    check_graph(path)


def export_onnx(*, source: Path, output: Path, opset: int = DEFAULT_OPSET, precision: str = "fp32",
                overwrite: bool = False) -> OnnxExport:
    """Export the three graphs of the weights folder ``source`` into ``output``.

    ``precision="fp16"`` rewrites each exported graph to float16 (float32 inputs and outputs kept;
    see :mod:`sam3ops.convert.onnx.fp16`).

    Raises:
        WeightsError, UsageError: as ``cast_weights`` (missing source, non-empty output), or an
            unknown precision.
    """
    from transformers import Sam3Model, Sam3Processor

    from sam3ops.checkpoint.derive import derived_folder
    from sam3ops.checkpoint.kinds import check_weights_dir, require_empty
    from sam3ops.errors import UsageError, WeightsError
    from sam3ops.inference.core import TorchCore

    if opset < MIN_OPSET:
        raise UsageError(f"opset {opset} is too old", hint=f"use opset {MIN_OPSET} or newer")
    if precision not in PRECISIONS:
        raise UsageError(f"ONNX export does not do precision {precision!r}",
                         hint=f"choose one of: {', '.join(PRECISIONS)}")
    source, output = check_weights_dir(Path(source)), Path(output)
    if not any(source.glob("*.safetensors")):
        raise WeightsError(f"{source} holds no safetensors weights to export",
                           hint="export from the fp32 weights folder (download or init)")
    require_empty(output, overwrite=overwrite)  # before loading the model for nothing
    core = TorchCore(Sam3Model.from_pretrained(source, dtype=torch.float32))
    processor = Sam3Processor.from_pretrained(source)
    size = processor.image_processor.size["height"]
    # Example inputs for tracing: batch 2 so no axis is specialised to 1.
    pixel_values = torch.zeros(2, 3, size, size)
    text = processor.tokenizer(["person", "cat"], padding="max_length", truncation=True,
                               max_length=processor.tokenizer.model_max_length, return_tensors="pt")
    with derived_folder(source, output, label="onnx", overwrite=overwrite) as derived:
        staging = derived.staging
        # no_grad, not inference_mode: the tracer cannot take inference tensors as inputs. The
        # decoder's example inputs need one real encoder pass; batch 1 keeps its activations small.
        with torch.no_grad():
            vision = tuple(t.expand(2, *t.shape[1:]).contiguous() for t in _Vision(core)(pixel_values[:1]))
            features = _Text(core)(text.input_ids, text.attention_mask)
            log.info("exporting the vision encoder")
            _export(_Vision(core), (pixel_values,), staging / "vision.onnx", ["pixel_values"], VISION_OUTPUTS,
                    opset, dynamo=True)
            log.info("exporting the text encoder")
            _export(_Text(core), (text.input_ids, text.attention_mask), staging / "text.onnx", TEXT_INPUTS,
                    ["text_features"], opset, dynamo=True)
            log.info("exporting the decoder")
            with traceable_geometry_encoder():
                _export(_Decoder(core), (*vision, features, text.attention_mask), staging / "decoder.onnx",
                        DECODER_INPUTS, DECODER_OUTPUTS, opset, dynamo=False)
        if precision == "fp16":
            import gc

            from sam3ops.convert.onnx.fp16 import convert_graph

            del core, vision, features  # the fp32 model (3.4 GB at full size) is not needed any more
            gc.collect()
            for name in GRAPHS:
                log.info("converting %s to fp16", name)
                convert_graph(staging / name)
    graphs = [output / name for name in GRAPHS]
    onnx_bytes = sum(p.stat().st_size for p in output.iterdir() if p.is_file() and ".onnx" in p.name)
    return OnnxExport(output, graphs, opset, onnx_bytes)


@contextlib.contextmanager
def onnx_source(input_dir: Path, *, near: Path, opset: int) -> Iterator[Path]:
    """The ONNX folder to build from: ``input_dir`` if it holds the graphs, else a temporary export
    of its safetensors beside ``near`` (removed afterwards, whatever happens)."""
    from sam3ops.checkpoint.kinds import check_weights_dir, is_onnx_dir

    input_dir = check_weights_dir(Path(input_dir))
    if is_onnx_dir(input_dir):
        yield input_dir
        return
    Path(near).parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=Path(near).parent, prefix=f".{Path(near).name}.onnx-"))
    try:
        log.info("exporting %s to ONNX first", input_dir)
        yield export_onnx(source=input_dir, output=scratch / "onnx", opset=opset).output
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
