"""Model cores: SAM3 as three tensor-in, tensor-out parts that every runtime implements.

- ``encode_image(pixel_values) -> VisionFeatures``: the vision encoder, once per image;
- ``encode_text(input_ids, attention_mask) -> text_features``: the text encoder, once per prompt;
- ``decode(vision, text_features, attention_mask) -> Outputs``: DETR encoder/decoder, scoring and
  mask head, once per (image, prompt) pair.

Pre- and post-processing live in :mod:`sam3ops.inference.segmenter` and are shared, so the ONNX and
TensorRT runtimes only have to provide these three calls. This module imports torch and
transformers only: it runs on GPU hosts without mlflow.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, Protocol

import torch


class VisionFeatures(NamedTuple):
    """The vision encoder's outputs the decoder reads: three FPN levels and their position encodings.

    (SAM3's neck also makes a fourth, coarsest level that the image model never reads; it is dropped.)
    """

    fpn_0: torch.Tensor
    fpn_1: torch.Tensor
    fpn_2: torch.Tensor
    pos_0: torch.Tensor
    pos_1: torch.Tensor
    pos_2: torch.Tensor

    def select(self, index: torch.Tensor | list[int]) -> VisionFeatures:
        """The features of the images at ``index`` along the batch axis (repeats allowed)."""
        index = torch.as_tensor(index, device=self.fpn_0.device)
        return VisionFeatures(*(t.index_select(0, index) for t in self))


class Outputs(NamedTuple):
    """Raw decoder outputs for a batch of (image, prompt) pairs."""

    pred_masks: torch.Tensor  # (B, Q, h, w) mask logits at the mask head's resolution
    pred_boxes: torch.Tensor  # (B, Q, 4) xyxy, normalised to [0, 1]
    pred_logits: torch.Tensor  # (B, Q) per-query logits
    presence_logits: torch.Tensor  # (B, 1) "is the concept in the image at all"
    semantic_seg: torch.Tensor  # (B, 1, h, w) semantic logits


class ModelCore(Protocol):
    """What a runtime provides. Tensors in, tensors out; batch is the first axis everywhere."""

    device: torch.device
    dtype: torch.dtype

    def encode_image(self, pixel_values: torch.Tensor) -> VisionFeatures: ...

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor: ...

    def decode(self, vision: VisionFeatures, text_features: torch.Tensor, attention_mask: torch.Tensor) -> Outputs: ...


class TorchCore:
    """The three parts on a ``Sam3Model`` in PyTorch: eager, or compiled with ``torch.compile``.

    Args:
        model: a loaded ``Sam3Model`` (its attention kernels were chosen when it was loaded).
        compile: ``torch.compile`` the encoders with the default mode (``options`` says more).
        options: a mode and the parts to compile (:class:`~sam3ops.inference.tuning.TorchOptions`).
    """

    def __init__(self, model, *, compile: bool = False, options=None):
        from sam3ops.inference.tuning import TorchOptions

        options = options or TorchOptions()
        if compile and options.compile == "off":
            options = dataclasses.replace(options, compile="default")
        self.model, self.options = model.eval(), options
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self._decode = self._decode_eager
        if options.compile != "off":
            self._compile(options.compile, options.compile_parts)

    def _compile(self, mode: str, parts: tuple[str, ...]) -> None:
        # Compile the parts, not the wrapper: each is called with its own shapes.
        kwargs = {} if mode == "default" else {"mode": mode}
        if "vision" in parts:
            self.model.vision_encoder = torch.compile(self.model.vision_encoder, **kwargs)
        if "text" in parts:
            self.model.text_encoder = torch.compile(self.model.text_encoder, **kwargs)
        if "decoder" in parts:
            self._decode = torch.compile(self._decode_eager, **kwargs)

    def attention(self) -> dict[str, str]:
        """The attention kernels the loaded model really runs, by attention module class."""
        found = {}
        for module in self.model.modules():
            name = type(module).__name__
            if name.endswith("Attention") and hasattr(module, "config"):
                found[name] = getattr(module.config, "_attn_implementation", None) or "eager"
        return found

    @torch.inference_mode()
    def encode_image(self, pixel_values: torch.Tensor) -> VisionFeatures:
        pixel_values = pixel_values.to(self.device, self.dtype, non_blocking=True)
        out = self.model.get_vision_features(pixel_values=pixel_values)
        levels, positions = out.fpn_hidden_states[:-1], out.fpn_position_encoding[:-1]
        return VisionFeatures(*levels, *positions)

    @torch.inference_mode()
    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.model.get_text_features(input_ids=input_ids.to(self.device),
                                           attention_mask=attention_mask.to(self.device))
        return out.pooler_output

    @torch.inference_mode()
    def decode(self, vision: VisionFeatures, text_features: torch.Tensor, attention_mask: torch.Tensor) -> Outputs:
        return Outputs(*self._decode(*vision, text_features, attention_mask.to(self.device)))

    def _decode_eager(self, fpn_0, fpn_1, fpn_2, pos_0, pos_1, pos_2, text_features, attention_mask):
        from transformers.modeling_outputs import BaseModelOutputWithPooling
        from transformers.models.sam3.modeling_sam3 import Sam3VisionEncoderOutput

        # Sam3Model.forward drops the last FPN level itself ([:-1]); hand it a placeholder there.
        embeds = Sam3VisionEncoderOutput(
            fpn_hidden_states=(fpn_0, fpn_1, fpn_2, fpn_2), fpn_position_encoding=(pos_0, pos_1, pos_2, pos_2)
        )
        boxes, labels = _padding_box(text_features, attention_mask)
        out = self.model(
            vision_embeds=embeds,
            text_embeds=BaseModelOutputWithPooling(pooler_output=text_features),
            attention_mask=attention_mask,
            input_boxes=boxes,
            input_boxes_labels=labels,
        )
        return out.pred_masks, out.pred_boxes, out.pred_logits, out.presence_logits, out.semantic_seg


# transformers' label for a padding box: the geometry encoder masks it out.
PADDING_BOX_LABEL = -10


def _padding_box(text_features: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One padding box per pair (cxcywh, any value: it is masked out), and its label.

    Why: Meta's model runs its geometry encoder for every prompt, so even a text-only prompt carries
    the encoder's CLS token; ``Sam3Model`` skips the encoder unless it is given boxes. One masked box
    makes it run the encoder with nothing but that CLS token, which is Meta's text-only prompt.
    Sizes come from the inputs (not Python ints), so a traced graph keeps its batch axis dynamic.
    """
    batch = text_features.shape[0]
    boxes = text_features.new_tensor([0.5, 0.5, 1.0, 1.0]).expand(batch, 1, 4)
    labels = torch.full_like(attention_mask[:, :1], PADDING_BOX_LABEL, dtype=torch.long)
    return boxes, labels
