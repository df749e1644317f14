"""The predict stage: segment images with text prompts in one MLflow run, outputs as artifacts."""

from __future__ import annotations

from pathlib import Path

from sam3ops import tracking
from sam3ops.errors import PartialFailureError


def predict_stage(*, images: list[str], weights: str, prompt_texts: list[str] = (), prompt_sets: list[str] = (),
                  output: str = "predictions", device: str = "cpu", precision: str = "fp32",
                  compile_model: bool = False, score_threshold: float = 0.5, mask_threshold: float = 0.5,
                  max_pixels: int | None = None, nested: bool = False):
    """Segment images in a ``predict`` run; return (PredictSummary, run id, weights manifest or None).

    Raises:
        PartialFailureError: after logging everything, when some images failed (the run is FAILED).
    """
    import mlflow

    from sam3ops.checkpoint.manifest import MANIFEST_NAME, Manifest
    from sam3ops.inference import Segmenter, collect_images
    from sam3ops.inference.images import DEFAULT_MAX_PIXELS
    from sam3ops.predict import write as predict_lib
    from sam3ops.predict.prompts import resolve_prompts

    max_pixels = max_pixels or DEFAULT_MAX_PIXELS
    params = {"images": " ".join(images), "weights": weights, "prompt": "|".join(prompt_texts),
              "prompt_set": ",".join(prompt_sets), "output": output, "device": device, "precision": precision,
              "compile": compile_model, "score_threshold": score_threshold, "mask_threshold": mask_threshold,
              "max_pixels": max_pixels}
    with tracking.stage_run("predict", params=params, nested=nested) as run:
        prompts = resolve_prompts(prompt_texts, prompt_sets)
        paths = collect_images(images)
        segmenter = Segmenter.from_dir(Path(weights), device=device, precision=precision, compile=compile_model,
                                       score_threshold=score_threshold, mask_threshold=mask_threshold)
        manifest = Manifest.read(Path(weights)) if (Path(weights) / MANIFEST_NAME).is_file() else None
        identity = {"weights_commit": manifest.commit if manifest else "unknown",
                    "weights_random": str(manifest.random if manifest else False).lower()}
        # The weights' identity as params too, so the compare view lines runs up by it.
        mlflow.log_params({"prompts": "|".join(prompts)[:6000], "image_count": len(paths), **identity})
        mlflow.set_tags(identity)
        summary = predict_lib.predict(segmenter=segmenter, images=paths, prompts=prompts, output=Path(output),
                                      max_pixels=max_pixels)
        predict_lib.log_to_mlflow(summary, segmenter)
        if summary.failed:
            raise PartialFailureError(f"{len(summary.failed)} of {len(summary.outcomes)} images failed")
    return summary, run.info.run_id, manifest
