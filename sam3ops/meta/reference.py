"""Meta's SAM3 as the outside reference: its raw outputs in this project's conventions.

Meta's ``Sam3Processor`` thresholds, rescales and drops queries; a comparison with another runtime
needs what comes before that: every query's logit, the presence logit, the boxes and the mask
logits. :func:`raw_outputs` runs Meta's own calls (``backbone.forward_image``,
``backbone.forward_text``, ``forward_grounding``) the way its processor does, for a batch, and returns
them as :class:`sam3ops.inference.core.Outputs`: boxes xyxy normalised to [0, 1] (Meta's
``pred_boxes_xyxy``; its ``pred_boxes`` are cxcywh), logits ``(B, Q)``, presence ``(B, 1)``.

The three steps are public too, so a runtime core can encode an image once and decode it for
many prompts. Everything here runs under :func:`sam3ops.meta.package.cpu_shims`, a no-op on a GPU.
Pixel values are what Meta's processor feeds the model: resized to the model's input size and
normalised with mean 0.5 / std 0.5, as this project's image processor also does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from sam3ops.inference.core import Outputs
from sam3ops.meta.package import cpu_shims


@torch.inference_mode()
def encode_image(model, pixel_values: torch.Tensor) -> dict:
    """Meta's ``backbone.forward_image`` on ``pixel_values`` ``(B, 3, H, W)``: its backbone output dict."""
    with cpu_shims():
        return model.backbone.forward_image(pixel_values.to(model.device, torch.float32))


@torch.inference_mode()
def encode_text(model, prompts: Sequence[str]) -> dict:
    """Meta's ``backbone.forward_text`` on ``prompts`` (its own tokenizer): language features and mask."""
    with cpu_shims():
        return model.backbone.forward_text(list(prompts), device=model.device)


@torch.inference_mode()
def decode(model, image_out: dict, text_out: dict, *, image_ids: Sequence[int],
           text_ids: Sequence[int]) -> Outputs:
    """Meta's ``forward_grounding`` for the pairs (``image_ids[i]``, ``text_ids[i]``), no geometric prompt.

    ``image_ids`` index the batch of :func:`encode_image`, ``text_ids`` the prompts of :func:`encode_text`.
    """
    from sam3.model.data_misc import FindStage

    device = model.device
    find = FindStage(img_ids=torch.tensor(list(image_ids), device=device, dtype=torch.long),
                     text_ids=torch.tensor(list(text_ids), device=device, dtype=torch.long),
                     input_boxes=None, input_boxes_mask=None, input_boxes_label=None,
                     input_points=None, input_points_mask=None)
    with cpu_shims():
        out = model.forward_grounding(backbone_out={**image_out, **text_out}, find_input=find, find_target=None,
                                      geometric_prompt=model._get_dummy_prompt(num_prompts=len(image_ids)))
    return Outputs(pred_masks=out["pred_masks"], pred_boxes=out["pred_boxes_xyxy"],
                   pred_logits=out["pred_logits"].squeeze(-1), presence_logits=out["presence_logit_dec"],
                   semantic_seg=out["semantic_seg"])


def raw_outputs(model, pixel_values: torch.Tensor, prompts: str | Sequence[str]) -> Outputs:
    """Meta's raw outputs for each image of ``pixel_values`` with its prompt.

    Args:
        model: Meta's ``Sam3Image`` (:func:`sam3ops.meta.package.build_image_model`).
        pixel_values: ``(B, 3, H, W)`` at the model's input size, normalised with mean 0.5 / std 0.5.
        prompts: one prompt for every image, or one per image.

    Returns:
        :class:`Outputs` for the B pairs: mask logits ``(B, Q, h, w)``, boxes ``(B, Q, 4)`` xyxy in
        [0, 1], per-query logits ``(B, Q)``, presence logits ``(B, 1)``, semantic logits ``(B, 1, h, w)``.

    Raises:
        ValueError: a list of prompts whose length is not the batch's.
    """
    batch = pixel_values.shape[0]
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    if len(prompts) not in (1, batch):
        raise ValueError(f"{len(prompts)} prompts for {batch} images: give one, or one per image")
    text_ids = [0] * batch if len(prompts) == 1 else list(range(batch))
    return decode(model, encode_image(model, pixel_values), encode_text(model, prompts),
                  image_ids=list(range(batch)), text_ids=text_ids)
