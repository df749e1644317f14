"""The predict stage: segment images with text prompts and write masks, JSON, overlays and pages.

One bad image never stops the rest: its failure is recorded with a one-line reason and the next
image goes on. Each image's outputs are written to a temporary folder and renamed into place, so
an interrupted run leaves no half-written result.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from sam3ops.checkpoint.atomic import staged_folder
from sam3ops.errors import ImageError
from sam3ops.inference.images import DEFAULT_MAX_PIXELS, load_image
from sam3ops.inference.prompts import clean_prompts
from sam3ops.inference.result import Result
from sam3ops.inference.segmenter import Segmenter
from sam3ops.predict import viz

log = logging.getLogger(__name__)

OUTPUT_FILES = ("result.json", "masks.png", "masks_rle.json", "overlay.png", "page.html")


@dataclass
class ImageOutcome:
    """What happened to one input image."""

    path: Path
    output: Path | None = None
    error: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    scores: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class PredictSummary:
    """All images of a predict run."""

    outcomes: list[ImageOutcome]
    prompts: list[str]
    output: Path

    @property
    def failed(self) -> list[ImageOutcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def succeeded(self) -> list[ImageOutcome]:
        return [o for o in self.outcomes if o.ok]

    def instances_per_prompt(self) -> dict[str, int]:
        """Instances of each prompt over all successful images."""
        return {p: sum(o.counts.get(p, 0) for o in self.succeeded) for p in self.prompts}

    def mean_score(self) -> float:
        """Mean score over every instance found (0 when none)."""
        scores = [s for o in self.succeeded for s in o.scores]
        return float(np.mean(scores)) if scores else 0.0


def coco_rle(mask: np.ndarray) -> dict:
    """COCO run-length encoding of one boolean mask (pycocotools' compressed form, as text)."""
    from pycocotools import mask as coco_mask

    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def label_map(result: Result) -> np.ndarray:
    """(H, W) uint16: 0 = background, i + 1 = instance i (later instances drawn over earlier ones)."""
    labels = np.zeros(result.size, np.uint16)
    for index, mask in enumerate(result.masks):
        labels[mask] = index + 1
    return labels


def write_result(image: Image.Image, result: Result, folder: Path, *, selection: dict,
                 weights_random: bool = False) -> Path:
    """Write every output file of one image into ``folder`` (replaced as a whole).

    ``selection`` (thresholds and top-k) goes into result.json; random weights are said there and
    drawn on the overlay and the page.
    """
    with staged_folder(Path(folder), "result") as staging:
        about = {**selection, "weights_random": weights_random}
        (staging / "result.json").write_text(json.dumps({**result.to_json(), **about}, indent=2))
        Image.fromarray(label_map(result)).save(staging / "masks.png")
        rle = [{"label": label, "score": round(float(score), 6), "rle": coco_rle(mask)}
               for label, score, mask in zip(result.labels, result.scores, result.masks)]
        (staging / "masks_rle.json").write_text(json.dumps(rle))
        viz.overlay(image, result, random_weights=weights_random).save(staging / "overlay.png")
        viz.interactive_page(image, result, staging / "page.html", title=f"{result.image} ({_kept(selection)})",
                             random_weights=weights_random)
    return folder


def _kept(selection: dict) -> str:
    """Which instances a picture shows, in words."""
    if selection.get("top_k"):
        return f"the {selection['top_k']} best per prompt"
    return f"score above {selection['score_threshold']:g}"


def _folder_names(paths: list[Path]) -> list[str]:
    """One output folder name per image: its stem, with a suffix where two stems collide."""
    names, seen = [], {}
    for path in paths:
        stem = path.stem or "image"
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return names


def predict(*, segmenter: Segmenter, images: list[Path], prompts: list[str], output: Path,
            max_pixels: int = DEFAULT_MAX_PIXELS, weights_random: bool = False) -> PredictSummary:
    """Segment ``prompts`` in each image and write the results under ``output/<image stem>/``.

    ``weights_random``: the segmenter's weights are random (said in result.json, on every picture).

    Returns:
        A summary with one outcome per image; failures carry their one-line reason.
    """
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    # With top_k the score threshold is not applied: result.json says null rather than a value that did nothing.
    selection = {"score_threshold": None if segmenter.top_k else segmenter.score_threshold,
                 "mask_threshold": segmenter.mask_threshold, "top_k": segmenter.top_k}
    outcomes = []
    for path, name in zip(images, _folder_names(images)):
        outcome = ImageOutcome(path)
        try:
            image = load_image(path, max_pixels=max_pixels)
        except ImageError as exc:
            outcome.error = exc.one_line()
            log.warning("skipped: %s", outcome.error)
            outcomes.append(outcome)
            continue
        result = segmenter.segment([image], prompts, names=[str(path)])[0]
        outcome.output = write_result(image, result, output / name, selection=selection,
                                      weights_random=weights_random)
        outcome.counts, outcome.scores = result.counts(), [float(s) for s in result.scores]
        log.info("%s: %s", path, ", ".join(f"{p} {n}" for p, n in outcome.counts.items()))
        outcomes.append(outcome)
    return PredictSummary(outcomes, clean_prompts(prompts), output)


def metric_key(text: str) -> str:
    """``text`` as an MLflow metric-name fragment (letters, digits, ``_ - .`` and spaces kept)."""
    return "".join(c if c.isalnum() or c in "_-. " else "_" for c in text).strip()[:200] or "_"


def log_to_mlflow(summary: PredictSummary, segmenter: Segmenter) -> None:
    """Log a predict run's metrics and artifacts to the active MLflow run."""
    import mlflow

    timings = segmenter.timings.mean_ms()
    metrics = {
        "images_ok": len(summary.succeeded),
        "images_failed": len(summary.failed),
        "instances_total": sum(summary.instances_per_prompt().values()),
        "mean_score": summary.mean_score(),
        **{f"instances_{metric_key(p)}": n for p, n in summary.instances_per_prompt().items()},
        **{("preprocess_ms" if s == "preprocess" else "postprocess_ms" if s == "postprocess" else f"stage_{s}_ms"): ms
           for s, ms in timings.items()},
    }
    mlflow.log_metrics(metrics)
    mlflow.log_dict(
        {"failures": [{"image": str(o.path), "error": o.error} for o in summary.failed],
         "warnings": segmenter.warnings},
        "failures.json",
    )
    mlflow.set_tag("all_inputs_ok", str(not summary.failed).lower())
    if summary.succeeded:
        mlflow.log_artifacts(str(summary.output), "predictions")
