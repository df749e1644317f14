"""Post-processing on the model's device: every prompt of an image selected at once, one copy to the host.

The same numbers as ``Sam3ImageProcessor.post_process_instance_segmentation`` (score = sigmoid(logit)
x sigmoid(presence); mask probabilities resized bilinearly to the image, then thresholded), computed
differently: one selection over all (prompt, query) pairs of an image instead of one per prompt
(one host synchronisation instead of one per prompt), only the kept masks turned to float32 (the
decoder's outputs may stay in bf16), masks thresholded to booleans on the device (not int64), and
each array copied to the host once. Used when ``TorchOptions.gpu_postprocess`` is on.
"""

from __future__ import annotations

import numpy as np
import torch

from sam3ops.inference.core import Outputs


def select_instances(outputs: Outputs, *, size: tuple[int, int], score_threshold: float,
                     mask_threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Kept instances of one image: ``(prompt_index, masks, boxes, scores)`` as host arrays.

    Args:
        outputs: decoder outputs of one image's prompts, any float dtype, on any device.
        size: (height, width) of the image.
        score_threshold, mask_threshold: as the processor's ``threshold`` and ``mask_threshold``.

    Returns:
        The prompt of each instance (int64), masks (N, H, W) bool, boxes (N, 4) xyxy pixels
        float32 and scores (N,) float32, ordered by prompt, then query.
    """
    scores = outputs.pred_logits.float().sigmoid() * outputs.presence_logits.float().sigmoid()
    prompt, query = (scores > score_threshold).nonzero(as_tuple=True)  # the one synchronisation
    height, width = size
    scale = torch.tensor([width, height, width, height], dtype=torch.float32, device=scores.device)
    boxes = outputs.pred_boxes[prompt, query].float() * scale
    if len(prompt):
        probabilities = outputs.pred_masks[prompt, query].float().sigmoid()
        masks = torch.nn.functional.interpolate(probabilities[None], size=size, mode="bilinear",
                                                align_corners=False)[0] > mask_threshold
    else:
        masks = torch.zeros((0, height, width), dtype=torch.bool, device=scores.device)
    return (prompt.cpu().numpy(), masks.cpu().numpy(), boxes.cpu().numpy().astype(np.float32),
            scores[prompt, query].cpu().numpy().astype(np.float32))
