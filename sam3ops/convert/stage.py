"""The convert stage: one conversion (fp16, bf16, onnx, tensorrt) in one MLflow run, gated on parity."""

from __future__ import annotations

import os
from pathlib import Path

from sam3ops import tracking

FORMATS = ("fp16", "bf16", "onnx", "tensorrt")


def _precision_for(format: str, precision: str | None) -> str:
    """The precision a conversion produces: the format's own for fp16/bf16, else ``precision`` or the
    format's default (onnx: fp32, tensorrt: fp16)."""
    if format in ("fp16", "bf16"):
        return format
    if precision in (None, "auto"):
        return "fp16" if format == "tensorrt" else "fp32"
    return precision


def _check_precision(format: str, precision: str | None) -> None:
    from sam3ops.errors import UsageError

    allowed = {"onnx": ("fp32", "fp16"), "tensorrt": ("fp16", "bf16", "fp32")}.get(format, (format,))
    if precision not in (None, "auto") and precision not in allowed:
        raise UsageError(f"--format {format} cannot make precision {precision!r}",
                         hint=f"use --precision {' or '.join(allowed)}" if format in ("onnx", "tensorrt")
                         else "drop --precision: the format is the precision")


def _log_readiness(readiness) -> None:
    import mlflow

    mlflow.log_dict(readiness.to_json(), "trt_readiness.json")
    mlflow.set_tag("trt_ready", str(readiness.ok).lower())
    mlflow.log_metric("trt_unsupported_ops", len(readiness.unsupported_ops))


def _convert_tensorrt(*, input_dir: Path, output: Path, precision: str, batch, workspace_gb: float,
                      timing_cache: str | None, opset: int, overwrite: bool):
    """(Export ONNX,) check the graphs' readiness, build the engines; log the build."""
    import mlflow

    from sam3ops.checkpoint.kinds import require_empty
    from sam3ops.convert.tensorrt import readiness as trt_readiness
    from sam3ops.convert.tensorrt.build import build_engines, onnx_source
    from sam3ops.errors import TensorRTBuildError

    require_empty(output, overwrite=overwrite)  # before exporting ONNX for nothing
    with onnx_source(input_dir, near=output, opset=opset) as onnx_dir:
        readiness = trt_readiness.check_folder(onnx_dir)
        _log_readiness(readiness)
        if not readiness.ok:
            raise TensorRTBuildError(f"the ONNX graphs are not ready for TensorRT: {len(readiness.problems)} problem(s), "
                                f"first: {readiness.problems[0]}")
        result = build_engines(source_onnx_dir=onnx_dir, output=output, precision=precision, batch=batch,
                               workspace_gb=workspace_gb, timing_cache=timing_cache, overwrite=overwrite)
    side = result.sidecar
    mlflow.set_tags({"trt_version": side["tensorrt_version"], "gpu_name": side["gpu_name"],
                     "compute_capability": side["compute_capability"], "trt_typing": result.typing})
    mlflow.log_metrics({f"build_s_{name.split('.')[0]}": s for name, s in result.build_seconds.items()})
    return result


def _reference(folder: Path, device: str) -> tuple[Path, str]:
    """The parity reference folder and its device; tags ``parity_reference``.

    Raises:
        UsageError: the folder holds float16 ONNX graphs, or engines: not an fp32 reference.
    """
    import mlflow

    from sam3ops.checkpoint.kinds import check_weights_dir, is_onnx_dir
    from sam3ops.convert.onnx.fp16 import is_fp16_graph
    from sam3ops.errors import UsageError

    folder = check_weights_dir(folder)
    if any(folder.glob("*.safetensors")):
        mlflow.set_tag("parity_reference", "torch-fp32")
        return folder, device
    if is_onnx_dir(folder) and not is_fp16_graph(folder / "vision.onnx"):
        mlflow.set_tag("parity_reference", "onnx-fp32")
        return folder, "cpu"  # ONNX Runtime's CPU provider: always there
    raise UsageError(f"{folder} is no fp32 reference for the parity gate",
                     hint="pass --reference with the fp32 safetensors folder the graphs came from")


def convert_stage(*, input_dir: str, format: str, output: str, overwrite: bool = False, device: str = "cpu",
                  min_mask_iou: float = 0.98, max_score_diff: float = 0.02, parity_images: list[str] = (),
                  parity_prompts: list[str] = (), opset: int = 17, precision: str | None = None,
                  batch: tuple[int, int, int] = (1, 8, 16), workspace_gb: float = 8.0,
                  timing_cache: str | None = None, reference: str | None = None, nested: bool = False):
    """Convert a weights folder in a ``convert`` run and gate it on parity with fp32; return
    (ParityReport, run id).

    ``precision`` applies to onnx (fp32, fp16) and tensorrt (fp16, bf16, fp32); ``batch`` (min, opt,
    max), ``workspace_gb`` and ``timing_cache`` to tensorrt only. Every ONNX conversion (and the
    graphs a TensorRT one builds from) is checked for TensorRT readiness: logged as
    ``trt_readiness.json``, tag ``trt_ready`` and metric ``trt_unsupported_ops``; it fails a
    tensorrt conversion before the build, never an onnx one. TensorRT parity runs on CUDA.

    The gate's reference is ``reference`` (default: ``input_dir``) in fp32: safetensors on torch, or,
    for engines built from an ONNX folder, those fp32 graphs on ONNX Runtime's CPU provider (tag
    ``parity_reference``).

    Raises:
        ParityError: after logging everything, when the artifact fails the gate (run FAILED,
            tag ``parity=fail``; its files are not logged as artifacts).
        TensorRTUnavailableError: format tensorrt without the tensorrt module or a GPU (checked first).
    """
    import resource
    import time

    import mlflow

    from sam3ops.checkpoint.manifest import Manifest
    from sam3ops.convert import cast, parity
    from sam3ops.convert.onnx import export as onnx_export
    from sam3ops.convert.tensorrt import build as tensorrt_build
    from sam3ops.convert.tensorrt import readiness as trt_readiness
    from sam3ops.errors import ParityError, UsageError
    from sam3ops.inference import Segmenter
    from sam3ops.inference.trt_core import require_tensorrt
    from sam3ops.predict.samples import DEFAULT_SAMPLES, sample_image

    resolved = _precision_for(format, precision)
    if format == "tensorrt" and not device.startswith("cuda"):
        device = "cuda"  # engines run on the GPU, and so does their reference
    params = {"input": input_dir, "format": format, "output": output, "precision": resolved, "device": device,
              "min_mask_iou": min_mask_iou, "max_score_diff": max_score_diff,
              **({"opset": opset} if format in ("onnx", "tensorrt") else {}),
              **({"min_batch": batch[0], "opt_batch": batch[1], "max_batch": batch[2], "workspace_gb": workspace_gb,
                  "timing_cache": timing_cache or "none"} if format == "tensorrt" and len(batch) == 3 else {})}
    with tracking.stage_run("convert", params=params, tags={"format": format, "precision": resolved},
                            nested=nested) as run:
        if format not in FORMATS:
            raise UsageError(f"unknown --format {format!r}", hint=f"choose one of: {', '.join(FORMATS)}")
        _check_precision(format, precision)
        if Path(input_dir).is_file() and Path(input_dir).suffix in (".pt", ".pth"):
            raise UsageError(f"{input_dir} is a PyTorch checkpoint file (Meta's sam3.pt?): convert reads a weights "
                             "folder in transformers format",
                             hint="`sam3ops download` fetches model.safetensors, the same weights in that format")
        if format == "tensorrt":
            batch = tensorrt_build.check_options(precision=resolved, batch=tuple(batch), workspace_gb=workspace_gb)
            require_tensorrt()  # before any export work: no GPU or no tensorrt is one line, nothing written
        reference_dir, reference_device = _reference(Path(reference or input_dir), device)
        started = time.perf_counter()
        if format == "tensorrt":
            result = _convert_tensorrt(input_dir=Path(input_dir), output=Path(output), precision=resolved,
                                       batch=batch, workspace_gb=workspace_gb, timing_cache=timing_cache,
                                       opset=opset, overwrite=overwrite)
        elif format == "onnx":
            result = onnx_export.export_onnx(source=Path(input_dir), output=Path(output), opset=opset,
                                             precision=resolved, overwrite=overwrite)
            _log_readiness(trt_readiness.check_folder(Path(output)))  # informative: never fails an onnx run
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
        report = parity.check(Segmenter.from_dir(reference_dir, device=reference_device),
                              Segmenter.from_dir(Path(output), device=device, precision=resolved),
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
