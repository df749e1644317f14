"""The fidelity gate: a converted artifact against the fp32 reference, on real photos and prompts.

Both sides run with every query kept (score threshold 0), so instance i of a prompt is the same
decoder query on both sides: instances are matched by query. Compared: scores, boxes (pixels),
thresholded masks (IoU), and non-finite values. Relative errors are not used: on random weights
raw logits can be tiny and their relative error meaningless.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

from sam3ops.convert.config import DEFAULT_MAX_SCORE_DIFF, DEFAULT_MIN_MASK_IOU
from sam3ops.convert.config import DEFAULT_PARITY_PROMPTS as DEFAULT_PROMPTS
from sam3ops.inference.result import Result


class Segmenter(Protocol):
    """What the gate needs of a segmenter (:class:`sam3ops.inference.segmenter.Segmenter` on any runtime):
    comparing results needs no torch, so neither does this module."""

    score_threshold: float

    def segment(self, images: list, prompts: list[str]) -> list[Result]: ...


@dataclass
class ParityReport:
    """How far a converted artifact is from the reference, and whether it passes the gate."""

    images: int
    instances: int
    score_max_abs_diff: float
    score_mean_abs_diff: float
    box_max_abs_diff_px: float
    box_mean_abs_diff_px: float
    mask_iou_mean: float
    mask_iou_min: float
    nonfinite: int
    min_mask_iou: float
    max_score_diff: float

    @property
    def passed(self) -> bool:
        """No NaN/Inf, mean mask IoU at least the gate's, every score within the gate's difference."""
        return (self.nonfinite == 0 and self.mask_iou_mean >= self.min_mask_iou
                and self.score_max_abs_diff <= self.max_score_diff)

    def to_json(self) -> dict:
        return {**asdict(self), "passed": self.passed}

    def metrics(self) -> dict[str, float]:
        """MLflow metrics (``parity_mask_iou`` is the name the benchmark stage uses too)."""
        return {
            "parity_mask_iou": self.mask_iou_mean, "parity_mask_iou_min": self.mask_iou_min,
            "parity_score_max_diff": self.score_max_abs_diff, "parity_score_mean_diff": self.score_mean_abs_diff,
            "parity_box_max_diff_px": self.box_max_abs_diff_px, "parity_box_mean_diff_px": self.box_mean_abs_diff_px,
            "parity_nonfinite": self.nonfinite, "parity_instances": self.instances,
        }


def _mask_ious(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    flat_a, flat_b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    inter = (flat_a & flat_b).sum(axis=1)
    union = (flat_a | flat_b).sum(axis=1)
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))  # both empty: identical


def compare_results(reference: list[Result], candidate: list[Result], *, min_mask_iou: float = DEFAULT_MIN_MASK_IOU,
                    max_score_diff: float = DEFAULT_MAX_SCORE_DIFF) -> ParityReport:
    """Compare per-query results of the same images and prompts (both made with score threshold 0)."""
    score_diffs, box_diffs, ious, nonfinite, instances = [], [], [], 0, 0
    for ref, cand in zip(reference, candidate):
        nonfinite += int((~np.isfinite(cand.scores)).sum() + (~np.isfinite(cand.boxes)).sum())
        if cand.labels != ref.labels:  # a query lost (NaN score) or reordered: count it as broken
            nonfinite += abs(len(ref.labels) - len(cand.labels)) or 1
            continue
        instances += len(ref.labels)
        score_diffs.append(np.abs(ref.scores - cand.scores))
        box_diffs.append(np.abs(ref.boxes - cand.boxes).ravel())
        ious.append(_mask_ious(ref.masks, cand.masks))
    scores, boxes, iou = _join(score_diffs), _join(box_diffs), _join(ious)
    return ParityReport(
        images=len(reference), instances=instances,
        score_max_abs_diff=_finite(scores, np.max), score_mean_abs_diff=_finite(scores, np.mean),
        box_max_abs_diff_px=_finite(boxes, np.max), box_mean_abs_diff_px=_finite(boxes, np.mean),
        mask_iou_mean=float(iou.mean()) if len(iou) else 0.0, mask_iou_min=float(iou.min()) if len(iou) else 0.0,
        nonfinite=nonfinite, min_mask_iou=min_mask_iou, max_score_diff=max_score_diff,
    )


def _join(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0)


def _finite(values: np.ndarray, reduce) -> float:
    """``reduce`` over the finite values; infinite when there are none (nothing comparable is a failure)."""
    finite = values[np.isfinite(values)]
    return float(reduce(finite)) if len(finite) else float("inf")


def check(reference: Segmenter, candidate: Segmenter, images: list, prompts: list[str] = DEFAULT_PROMPTS,
          **gate) -> ParityReport:
    """Run both segmenters (every query kept) on ``images`` x ``prompts`` and compare them."""
    return compare_results(every_query(reference, images, prompts), every_query(candidate, images, prompts), **gate)


def every_query(segmenter: Segmenter, images: list, prompts=DEFAULT_PROMPTS) -> list[Result]:
    """``segmenter``'s results with every query kept (score threshold 0, restored after), one image at a time."""
    threshold = segmenter.score_threshold
    segmenter.score_threshold = 0.0  # keep every query: instances are matched by query index
    try:
        return [segmenter.segment([image], list(prompts))[0] for image in images]
    finally:
        segmenter.score_threshold = threshold
