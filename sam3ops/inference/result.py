"""What one segmentation call returns for one image: masks, boxes, scores and labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Result:
    """Instances found in one image, at the image's own resolution."""

    image: str
    prompts: list[str]
    masks: np.ndarray  # (N, H, W) bool
    boxes: np.ndarray  # (N, 4) float32, xyxy in pixels
    scores: np.ndarray  # (N,) float32
    labels: list[str]  # the prompt of each instance
    semantic: np.ndarray  # (H, W) uint16: 0 = nothing, i + 1 = prompts[i]

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the image."""
        return tuple(self.semantic.shape)

    @property
    def areas(self) -> np.ndarray:
        """Pixels in each instance mask."""
        return self.masks.reshape(len(self.masks), -1).sum(axis=1) if len(self.masks) else np.zeros(0, np.int64)

    def counts(self) -> dict[str, int]:
        """Instances per prompt (every prompt listed, zeros included)."""
        return {prompt: self.labels.count(prompt) for prompt in self.prompts}

    def to_json(self) -> dict:
        """Labels, scores, boxes and areas as plain JSON types."""
        return {
            "image": self.image,
            "height": self.size[0],
            "width": self.size[1],
            "prompts": self.prompts,
            "instances": [
                {"label": label, "score": round(float(score), 6), "box_xyxy": [round(float(v), 2) for v in box],
                 "area": int(area)}
                for label, score, box, area in zip(self.labels, self.scores, self.boxes, self.areas)
            ],
        }
