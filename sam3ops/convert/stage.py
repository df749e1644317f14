"""The convert stage: one conversion (fp16, bf16, fp32, onnx, tensorrt, aoti) in one MLflow run, gated on parity."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sam3ops import tracking
from sam3ops.convert.config import ConvertConfig
from sam3ops.errors import ParityError
from sam3ops.tracking.result import FAILED, StageResult

SOURCE_RUN_ENV = "SAM3OPS_SOURCE_RUN_ID"  # set by a caller that knows the run that made the input


def convert_stage(*, nested: bool = False, **options: Any) -> StageResult:
    """Convert a weights folder in a ``convert`` run and gate it on parity with fp32.

    The options are validated inside the run (a bad one ends it FAILED with its one-line error),
    and then travel as one :class:`ConvertConfig`. Every ONNX conversion (and the graphs a TensorRT
    one builds from) is checked for TensorRT readiness: logged as ``trt_readiness.json``, tag
    ``trt_ready`` and metric ``trt_unsupported_ops``; it fails a tensorrt conversion before the
    build, never an onnx one. The gate's reference is the config's ``reference`` in fp32:
    safetensors on torch, or, for engines built from an ONNX folder, those fp32 graphs on ONNX
    Runtime's CPU provider, or a Meta checkpoint (a ``sam3.pt`` or a Meta-layout folder) on Meta's
    own model (tag ``parity_reference``: ``torch-fp32``, ``onnx-fp32`` or ``meta``).

    Args:
        nested: run as a child of the active run (the pipeline's).
        options: the fields of :class:`ConvertConfig`: ``input_dir``, ``format`` and ``output``,
            and optionally precision, opset, overwrite, device, the TensorRT profile, workspace and
            timing cache, the reference, the gate's thresholds, photos and prompts.

    Returns:
        A :class:`StageResult` whose outputs are the ``ParityReport``. Under the gate (or with
        NaN/Inf) it is FAILED with a ``ParityError``: the run ended FAILED with tag ``parity=fail``
        and the converted files are not logged as artifacts.

    Raises:
        UsageError: a bad option, or a reference that is not fp32.
        TensorRTUnavailableError: format tensorrt without the tensorrt module or a GPU (checked
            before any export work).
        TensorRTBuildError: graphs not ready for TensorRT, or a failed build.
    """
    report = None
    try:
        with tracking.stage_run("convert", nested=nested) as run:
            import mlflow

            config = ConvertConfig(**options)
            tracking.log_new_params(config.params())
            mlflow.set_tags({"format": config.format, "precision": config.precision})
            if config.format == "tensorrt":
                from sam3ops.inference.trt_core import require_tensorrt

                require_tensorrt()  # before any export work: no GPU or no tensorrt is one line, nothing written
            from sam3ops.convert import layouts

            with layouts.sources(config) as sources:  # a Meta input is read as an fp32 transformers folder
                reference = _reference(sources.reference, config.device)
                _convert(config, sources.source)
                with layouts.candidate(config) as candidate:
                    report = _gate(config, *reference, candidate=candidate)
            if not report.passed:
                # Raised inside the run so it ends FAILED with this line as its error tag; returned below.
                raise _parity_error(config, report)
    except ParityError as exc:
        return StageResult(stage="convert", run_id=run.info.run_id, status=FAILED, outputs=report, error=exc)
    return StageResult(stage="convert", run_id=run.info.run_id, outputs=report)


def _reference(folder: Path, device: str) -> tuple[Path, str]:
    """The parity reference folder and its device; tags ``parity_reference``.

    Raises:
        UsageError: the folder holds float16 ONNX graphs, or engines: not an fp32 reference.
        WeightsError, MetaPackageError: a ``.pt`` that is no Meta checkpoint, or Meta's package missing.
    """
    import mlflow

    from sam3ops.checkpoint.kinds import check_weights_dir, is_onnx_dir
    from sam3ops.convert.onnx.fp16 import is_fp16_graph
    from sam3ops.errors import UsageError
    from sam3ops.inference import meta_core

    if meta_core.is_meta_layout(folder) or Path(folder).is_file():
        checked = meta_core.check_checkpoint(folder)  # before converting anything: a bad one is one line now
        mlflow.set_tag("parity_reference", "meta")
        return checked, device
    folder = check_weights_dir(folder)
    if any(folder.glob("*.safetensors")):
        mlflow.set_tag("parity_reference", "torch-fp32")
        return folder, device
    if is_onnx_dir(folder) and not is_fp16_graph(folder / "vision.onnx"):
        mlflow.set_tag("parity_reference", "onnx-fp32")
        return folder, "cpu"  # ONNX Runtime's CPU provider: always there
    raise UsageError(f"{folder} is no fp32 reference for the parity gate",
                     hint="pass --reference with the fp32 safetensors folder the graphs came from")


def _convert(config: ConvertConfig, source: Path) -> None:
    """Write the converted folder from ``source``; log its size, time, peak memory and where it came from."""
    import resource
    import time

    import mlflow

    from sam3ops.checkpoint.manifest import Manifest
    from sam3ops.convert import cast, layouts
    from sam3ops.convert.onnx import export as onnx_export
    from sam3ops.convert.tensorrt import readiness as trt_readiness

    output = Path(config.output)
    started = time.perf_counter()
    if layouts.writes_meta(config, source):
        result = layouts.convert(config)  # Meta's sam3.pt in or out, at fp32/fp16/bf16
    elif config.format == "tensorrt":
        result = _convert_tensorrt(config, source)
    elif config.format == "aoti":
        from sam3ops.convert.aoti.stage import convert_aoti

        result = convert_aoti(config, source)
    elif config.format == "onnx":
        result = onnx_export.export_onnx(source=source, output=output, opset=config.opset,
                                         precision=config.precision, overwrite=config.overwrite)
        _log_readiness(trt_readiness.check_folder(output))  # informative: never fails an onnx run
    else:
        result = cast.cast_weights(source=source, output=output, precision=config.format, overwrite=config.overwrite)
    mlflow.log_metrics({"seconds": time.perf_counter() - started,
                        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # Linux: KiB
                        "output_mb": result.bytes_written / 1e6})
    manifest = Manifest.read(source)  # for a Meta .pt file: its fp32 import, named after the file's sha256
    mlflow.set_tags({"layout": config.layout, "source_commit": manifest.commit, "weights_commit": manifest.commit,
                     "weights_random": str(manifest.random).lower()})
    if parent := os.environ.get(SOURCE_RUN_ENV):
        mlflow.set_tag("source_run_id", parent)


def _convert_tensorrt(config: ConvertConfig, source: Path):
    """(Export ONNX,) check the graphs' readiness, build the engines; log the build."""
    import mlflow

    from sam3ops.checkpoint.kinds import require_empty
    from sam3ops.convert.onnx.export import onnx_source
    from sam3ops.convert.tensorrt import readiness as trt_readiness
    from sam3ops.convert.tensorrt.build import build_engines
    from sam3ops.errors import TensorRTBuildError

    output = Path(config.output)
    require_empty(output, overwrite=config.overwrite)  # before exporting ONNX for nothing
    with onnx_source(source, near=output, opset=config.opset) as onnx_dir:
        readiness = trt_readiness.check_folder(onnx_dir)
        _log_readiness(readiness)
        if not readiness.ok:
            raise TensorRTBuildError(f"the ONNX graphs are not ready for TensorRT: {len(readiness.problems)} "
                                     f"problem(s), first: {readiness.problems[0]}")
        result = build_engines(source_onnx_dir=onnx_dir, output=output, precision=config.precision,
                               batch=config.batch, workspace_gb=config.workspace_gb,
                               timing_cache=config.timing_cache, overwrite=config.overwrite)
    side = result.sidecar
    mlflow.set_tags({"trt_version": side["tensorrt_version"], "gpu_name": side["gpu_name"],
                     "compute_capability": side["compute_capability"], "trt_typing": result.typing})
    mlflow.log_metrics({f"build_s_{name.split('.')[0]}": s for name, s in result.build_seconds.items()})
    return result


def _log_readiness(readiness) -> None:
    import mlflow

    mlflow.log_dict(readiness.to_json(), "trt_readiness.json")
    mlflow.set_tag("trt_ready", str(readiness.ok).lower())
    mlflow.log_metric("trt_unsupported_ops", len(readiness.unsupported_ops))


def _gate(config: ConvertConfig, reference_dir: Path, reference_device: str, *, candidate: Path):
    """Run the reference and ``candidate`` (the converted folder, or Meta's sam3.pt read back) on the
    parity photos; log the report (and, when it passes, the converted files); return it."""
    import mlflow

    from sam3ops.convert import parity
    from sam3ops.inference import Segmenter
    from sam3ops.predict.samples import sample_image
    from sam3ops.registry.logged import log_weights_model, photo_dataset

    images = [sample_image(name) for name in config.parity_images]
    runtime = "meta" if reference_dir.is_file() else "auto"  # a checkpoint file: Meta's sam3.pt
    report = parity.check(Segmenter.from_dir(reference_dir, device=reference_device, runtime=runtime),
                          Segmenter.from_dir(candidate, device=config.device, precision=config.precision),
                          images, list(config.parity_prompts), min_mask_iou=config.min_mask_iou,
                          max_score_diff=config.max_score_diff)
    mlflow.log_dict({**report.to_json(), "images": list(config.parity_images), "prompts": list(config.parity_prompts)},
                    "parity.json")
    mlflow.set_tag("parity", "pass" if report.passed else "fail")
    model_id = None
    if report.passed:  # a failed artifact is never logged as a model: nothing to register from the run
        model_id = log_weights_model(Path(config.output), format=config.format, precision=config.precision,
                                     tags={"parity": "pass", **_model_tags()})
    # The gate's numbers, linked to the model they judge and the photos they were measured on.
    dataset = photo_dataset(list(zip(config.parity_images, images, strict=True)), name="parity-photos")
    mlflow.log_metrics(report.metrics(), model_id=model_id, dataset=dataset)
    return report


def _model_tags() -> dict[str, str]:
    """The active run's tags that describe its files, for the logged model."""
    import mlflow

    tags = mlflow.get_run(mlflow.active_run().info.run_id).data.tags
    return {key: tags[key] for key in ("weights_random", "weights_commit", "trt_version", "gpu_name",
                                       "compute_capability") if key in tags}


def _parity_error(config: ConvertConfig, report) -> ParityError:
    return ParityError(
        f"{config.format} conversion fails the parity gate: mask IoU {report.mask_iou_mean:.4f} (min "
        f"{config.min_mask_iou}), score diff {report.score_max_abs_diff:.4f} (max {config.max_score_diff}), "
        f"{report.nonfinite} NaN/Inf")
