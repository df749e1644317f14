"""Each stage as one tracked call: open its MLflow run, call the library, log what it did.

The CLI commands and the pipeline both call these; ``nested=True`` makes the run a child of the
active one (the pipeline's).
"""

from __future__ import annotations

import os
from pathlib import Path

from sam3ops import tracking
from sam3ops.errors import PartialFailureError


def download_stage(*, repo_id: str, revision: str, output: str, include: str, token: str | None = None,
                   nested: bool = False):
    """Download weights from the hub in a ``download`` run; return (DownloadResult, run id)."""
    import mlflow

    from sam3ops import hub

    params = {"repo_id": repo_id, "revision": revision, "output": output, "include": include}
    with tracking.stage_run("download", params=params, tags={"weights_random": "false"}, nested=nested) as run:
        result = hub.download(repo_id=repo_id, revision=revision, output=Path(output), include=include, token=token)
        mlflow.set_tags({"weights_commit": result.manifest.commit, "repo_id": repo_id})
        mlflow.log_metrics({
            "bytes_downloaded": result.bytes_downloaded,
            "seconds": result.seconds,
            "mb_per_s": result.mb_per_s,
            "files_fetched": len(result.fetched),
            "files_total": len(result.manifest.files),
        })
        mlflow.log_artifact(str(Path(output) / "manifest.json"))
    return result, run.info.run_id


def init_stage(*, preset: str, output: str = "auto", seed: int = 0, force: bool = False, nested: bool = False):
    """Write a random-weights preset in an ``init`` run; return (InitResult, run id)."""
    import mlflow

    from sam3ops import presets

    params = {"preset": preset, "output": output, "seed": seed}
    folder = Path(f"weights/sam3-{preset}" if output == "auto" else output)
    with tracking.stage_run("init", params=params, tags={"weights_random": "true", "preset": preset},
                            nested=nested) as run:
        result = presets.init_weights(preset=preset, output=folder, seed=seed, force=force)
        mlflow.set_tags({"weights_commit": result.manifest.commit, "reused": str(result.reused).lower()})
        if not result.reused:
            mlflow.log_metrics({"parameters": result.parameters, "seconds": result.seconds})
        mlflow.log_metric("bytes_written", sum(f.size for f in result.manifest.files))
        mlflow.log_artifact(str(folder / "manifest.json"))
    return result, run.info.run_id


def predict_stage(*, images: list[str], weights: str, prompt_texts: list[str] = (), prompt_sets: list[str] = (),
                  output: str = "predictions", device: str = "cpu", precision: str = "fp32",
                  compile_model: bool = False, score_threshold: float = 0.5, mask_threshold: float = 0.5,
                  max_pixels: int | None = None, nested: bool = False):
    """Segment images in a ``predict`` run; return (PredictSummary, run id, weights manifest or None).

    Raises:
        PartialFailureError: after logging everything, when some images failed (the run is FAILED).
    """
    import mlflow

    from sam3ops import predict as predict_lib
    from sam3ops.inference import Segmenter, collect_images
    from sam3ops.inference.images import DEFAULT_MAX_PIXELS
    from sam3ops.manifest import MANIFEST_NAME, Manifest
    from sam3ops.prompts import resolve_prompts

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


FORMATS = ("fp16", "bf16", "onnx")


def convert_stage(*, input_dir: str, format: str, output: str, overwrite: bool = False, device: str = "cpu",
                  min_mask_iou: float = 0.98, max_score_diff: float = 0.02, parity_images: list[str] = (),
                  parity_prompts: list[str] = (), opset: int = 17, nested: bool = False):
    """Convert a weights folder in a ``convert`` run and gate it on parity with fp32; return
    (ParityReport, run id).

    Raises:
        ParityError: after logging everything, when the artifact fails the gate (run FAILED,
            tag ``parity=fail``; its files are not logged as artifacts).
    """
    import json
    import resource
    import time

    import mlflow

    from sam3ops.convert import cast, onnx_export, parity
    from sam3ops.errors import ParityError, UsageError
    from sam3ops.inference import Segmenter
    from sam3ops.manifest import Manifest
    from sam3ops.samples import DEFAULT_SAMPLES, sample_image

    precision = format if format in cast.TARGETS else "fp32"
    params = {"input": input_dir, "format": format, "output": output, "precision": precision, "device": device,
              "min_mask_iou": min_mask_iou, "max_score_diff": max_score_diff,
              **({"opset": opset} if format == "onnx" else {})}
    with tracking.stage_run("convert", params=params, tags={"format": format, "precision": precision},
                            nested=nested) as run:
        if format not in FORMATS:
            raise UsageError(f"unknown --format {format!r}", hint=f"choose one of: {', '.join(FORMATS)}")
        started = time.perf_counter()
        if format == "onnx":
            result = onnx_export.export_onnx(source=Path(input_dir), output=Path(output), opset=opset,
                                             overwrite=overwrite)
        else:
            result = cast.cast_weights(source=Path(input_dir), output=Path(output), precision=format,
                                       overwrite=overwrite)
        seconds = time.perf_counter() - started
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
        source = Manifest.read(Path(input_dir))
        mlflow.set_tags({"source_commit": source.commit, "weights_commit": source.commit,
                         "weights_random": str(source.random).lower()})
        if (parent := os.environ.get("SAM3OPS_SOURCE_RUN_ID")):
            mlflow.set_tag("source_run_id", parent)

        images = [sample_image(name) for name in (parity_images or DEFAULT_SAMPLES[:2])]
        prompts = list(parity_prompts or parity.DEFAULT_PROMPTS)
        report = parity.check(Segmenter.from_dir(Path(input_dir), device=device),
                              Segmenter.from_dir(Path(output), device=device, precision=precision),
                              images, prompts, min_mask_iou=min_mask_iou, max_score_diff=max_score_diff)
        mlflow.log_metrics({"seconds": seconds, "peak_rss_mb": peak_rss_mb,
                            "output_mb": result.bytes_written / 1e6, **report.metrics()})
        mlflow.log_dict({**report.to_json(), "images": [n for n in (parity_images or DEFAULT_SAMPLES[:2])],
                         "prompts": prompts}, "parity.json")
        mlflow.set_tag("parity", "pass" if report.passed else "fail")
        if not report.passed:
            raise ParityError(
                f"{format} conversion fails the parity gate: mask IoU {report.mask_iou_mean:.4f} (min {min_mask_iou}), "
                f"score diff {report.score_max_abs_diff:.4f} (max {max_score_diff}), {report.nonfinite} NaN/Inf")
        mlflow.log_artifacts(output, "weights")
    return report, run.info.run_id
