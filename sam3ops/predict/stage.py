"""The predict stage: segment images with text prompts in one MLflow run, outputs as artifacts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sam3ops import tracking
from sam3ops.errors import PartialFailureError
from sam3ops.predict import config
from sam3ops.tracking.result import FAILED, StageResult

if TYPE_CHECKING:
    from sam3ops.predict.write import PredictSummary


@dataclass(frozen=True)
class Prediction:
    """What a predict run made: every image's outcome, and whether the weights were random."""

    summary: PredictSummary
    weights_random: bool

    @property
    def images_ok(self) -> int:
        """Images segmented without error."""
        return len(self.summary.succeeded)

    @property
    def instances(self) -> int:
        """Instances found over every prompt and image."""
        return sum(self.summary.instances_per_prompt().values())


def predict_stage(*, images: list[str], weights: str = config.DEFAULT_WEIGHTS, prompt_texts: list[str] = (),
                  prompt_sets: list[str] = (), output: str = config.DEFAULT_OUTPUT,
                  device: str = config.DEFAULT_DEVICE, precision: str = config.DEFAULT_PRECISION,
                  compile_model: bool = False, score_threshold: float = config.DEFAULT_SCORE_THRESHOLD,
                  mask_threshold: float = config.DEFAULT_MASK_THRESHOLD, top_k: int | None = config.DEFAULT_TOP_K,
                  max_pixels: int = config.DEFAULT_MAX_PIXELS, runtime: str = config.DEFAULT_RUNTIME,
                  nested: bool = False) -> StageResult[Prediction]:
    """Segment images in a ``predict`` run: masks, JSON, overlays and pages under ``output``, logged.

    Args:
        images: files, folders or globs.
        weights: a weights folder (safetensors, ONNX graphs or engines).
        prompt_texts, prompt_sets: text prompts, and named sets of them (at least one of the two).
        output: folder for the results (one subfolder per image).
        device, precision, compile_model: where and how the model runs.
        score_threshold, mask_threshold: keep instances scoring above; binarise masks above.
        top_k: instead, keep the ``top_k`` best instances per prompt in each image, whatever their
            score (``score_threshold`` is then not applied); None: the threshold.
        max_pixels: refuse larger images (decompression-bomb guard).
        runtime: ``auto`` (from what ``weights`` holds) or ``meta`` (Meta's own model; a ``sam3.pt``).
        nested: run as a child of the active run (the pipeline's).

    Returns:
        A :class:`StageResult` whose outputs are a :class:`Prediction`. When some images failed it
        is FAILED with a ``PartialFailureError`` (each failure is in the run's ``failures.json``;
        the others' outputs are written and logged).

    Raises:
        PromptsError, ImageError, WeightsError, UsageError: nothing could be predicted.
    """
    import mlflow

    from sam3ops.checkpoint.manifest import identity as weights_identity
    from sam3ops.inference import Segmenter, collect_images
    from sam3ops.inference.prompts import resolve_prompts
    from sam3ops.predict import write as predict_lib

    params = {"images": " ".join(images), "weights": weights, "prompt": "|".join(prompt_texts),
              "prompt_set": ",".join(prompt_sets), "output": output, "device": device, "precision": precision,
              "compile": compile_model, "score_threshold": score_threshold, "mask_threshold": mask_threshold,
              "top_k": config.OFF if top_k is None else top_k, "max_pixels": max_pixels, "runtime": runtime}
    prediction = None
    try:
        with tracking.stage_run("predict", params=params, nested=nested) as run:
            prompts = resolve_prompts(prompt_texts, prompt_sets)
            paths = collect_images(images)
            segmenter = Segmenter.from_dir(Path(weights), device=device, precision=precision, compile=compile_model,
                                           runtime=runtime, score_threshold=score_threshold,
                                           mask_threshold=mask_threshold, top_k=top_k)
            source = weights_identity(Path(weights))
            random = bool(source["random"])
            identity = {"weights_commit": source["commit"], "weights_random": str(random).lower()}
            # The weights' identity as params too, so the compare view lines runs up by it.
            mlflow.log_params({"prompts": "|".join(prompts)[:6000], "image_count": len(paths), **identity})
            mlflow.set_tags(identity)
            summary = predict_lib.predict(segmenter=segmenter, images=paths, prompts=prompts, output=Path(output),
                                          max_pixels=max_pixels, weights_random=random)
            predict_lib.log_to_mlflow(summary, segmenter)
            prediction = Prediction(summary, random)
            if summary.failed:  # raised inside the run so it ends FAILED with this line; returned below
                raise PartialFailureError(f"{len(summary.failed)} of {len(summary.outcomes)} images failed")
    except PartialFailureError as exc:
        return StageResult(stage="predict", run_id=run.info.run_id, status=FAILED, outputs=prediction, error=exc)
    return StageResult(stage="predict", run_id=run.info.run_id, outputs=prediction)
