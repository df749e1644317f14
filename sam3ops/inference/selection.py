"""Which decoder queries become instances: the score threshold, or the k best per (image, prompt).

SAM3's decoder proposes a fixed number of queries per (image, prompt) pair, each with a score
(query score x presence score). By default an instance is a query scoring above the threshold. With
``top_k``, each pair keeps its ``k`` highest-scoring queries whatever their score, best first, and the
threshold is not applied: what SAM users ask for when they want "the 3 best masks", and what shows
masks at all on random weights (whose scores sit below any useful threshold).

Torch-free at import (the stage configs check ``top_k`` with :func:`check_top_k` before any model loads).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sam3ops.errors import UsageError

if TYPE_CHECKING:
    from sam3ops.inference.core import Outputs

# Every score passes this: the processor keeps `score > threshold`, and a score can underflow to 0.
KEEP_ALL = -1.0


def check_top_k(top_k: int | None) -> int | None:
    """``top_k`` when it is None (threshold selection) or a whole number >= 1.

    Raises:
        UsageError: anything else.
    """
    if top_k is None:
        return None
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise UsageError(f"top_k must be a whole number of at least 1, got {top_k!r}",
                         hint="pass --top-k 3 (the 3 best instances per prompt), or off to keep those above "
                              "--score-threshold")
    return top_k


def top_k_queries(outputs: Outputs, k: int) -> Outputs:
    """The ``k`` best-scoring queries of every (image, prompt) row of ``outputs``, best first.

    Scores rank as the processor computes them (sigmoid(logit) x sigmoid(presence)); the presence
    factor is the same for a whole row, so ranking by query logit alone gives the same order. Fewer
    than ``k`` queries: all of them. The semantic map is the whole row's and is left as it is.
    """
    k = min(k, outputs.pred_logits.shape[1])
    index = outputs.pred_logits.topk(k, dim=1).indices  # (B, k), sorted by score, best first
    masks = outputs.pred_masks.gather(1, index[:, :, None, None].expand(-1, -1, *outputs.pred_masks.shape[2:]))
    boxes = outputs.pred_boxes.gather(1, index[:, :, None].expand(-1, -1, outputs.pred_boxes.shape[2]))
    return outputs._replace(pred_masks=masks, pred_boxes=boxes, pred_logits=outputs.pred_logits.gather(1, index))
