"""What a benchmark measures and where: the configurations a weights folder allows, its identity,
and the machine (host, versions, GPU) the numbers come from."""

from __future__ import annotations

import contextlib
from pathlib import Path

from sam3ops.bench.config import BenchConfig
from sam3ops.checkpoint.kinds import (
    aoti_sidecar,
    check_weights_dir,
    engine_sidecar,
    is_aoti_dir,
    is_engine_dir,
    is_onnx_dir,
)
from sam3ops.checkpoint.manifest import identity
from sam3ops.errors import UsageError


def check_folder(weights: Path) -> Path:
    """``weights`` if it is a weights folder of any kind, Meta's layout included (:class:`WeightsError` if not)."""
    from sam3ops.inference.meta_core import is_meta_layout

    return Path(weights) if is_meta_layout(weights) else check_weights_dir(weights)


def resolve_runtime(weights: Path, runtime: str) -> str:
    """The runtime for ``weights``: ``auto`` picks from the folder; a mismatch is a :class:`UsageError`."""
    from sam3ops.inference.meta_core import checkpoint_file, is_meta_layout

    if runtime == "meta":
        checkpoint_file(weights)  # a transformers folder: one line on how to get Meta's layout
        return runtime
    kind = ("meta" if is_meta_layout(weights) else "tensorrt" if is_engine_dir(weights)
            else "onnx" if is_onnx_dir(weights) else "aoti" if is_aoti_dir(weights) else "torch")
    if runtime == "auto":
        return kind
    if kind == "meta":
        raise UsageError(f"runtime {runtime} cannot run {weights}: it holds Meta's sam3.pt",
                         hint="use --runtime auto (or meta), or convert it to transformers' layout first")
    if (runtime in ("torch", "torch-compile")) != (kind == "torch") or (kind != "torch" and runtime != kind):
        what = {"torch": "safetensors weights", "onnx": "ONNX graphs", "tensorrt": "TensorRT engines",
                "aoti": "AOTInductor packages"}[kind]
        raise UsageError(f"runtime {runtime} cannot run {weights}: it holds {what}",
                         hint=f"use --runtime auto, or convert first: sam3ops convert --format {runtime}"
                         if runtime in ("onnx", "tensorrt", "aoti") else "use --runtime auto")
    return runtime


def artifact_precision(weights: Path, runtime: str) -> str | None:
    """The precision fixed in an ONNX, TensorRT or AOTInductor artifact (None for safetensors: chosen at load)."""
    if runtime == "onnx":
        import onnx

        graph = onnx.load(str(weights / "vision.onnx"), load_external_data=False).graph
        half = {onnx.TensorProto.FLOAT16: "fp16", onnx.TensorProto.BFLOAT16: "bf16"}
        return next((half[t.data_type] for t in graph.initializer if t.data_type in half), "fp32")
    if runtime in ("tensorrt", "aoti"):
        precision = (engine_sidecar if runtime == "tensorrt" else aoti_sidecar)(weights).get("precision")
        return str(precision) if precision else None
    return None


def check_device(device: str) -> None:
    """:class:`UsageError` when ``device`` asks for CUDA on a machine without it."""
    from sam3ops.inference.device import resolve_device

    resolve_device(device)


def configurations(config: BenchConfig, weights: Path) -> list[tuple[str, str]]:
    """The (runtime, precision) pairs to measure, checked against what ``weights`` holds."""
    runtime = resolve_runtime(weights, config.runtime)
    if runtime in ("onnx", "tensorrt", "aoti"):
        fixed = artifact_precision(weights, runtime)
        asked = [p for p in config.precisions if p != "fp32"]
        if fixed and asked and asked != [fixed]:
            raise UsageError(f"{weights} holds {runtime} {fixed}: its precision was fixed at conversion",
                             hint=f"drop --precision, or give --precision {fixed}")
        return [(runtime, fixed or config.precisions[0])]
    return [(runtime, precision) for precision in config.precisions]


def stored_dtype(weights: Path) -> str | None:
    """The dtype the safetensors of ``weights`` are stored in (``F32``, ``F16``, ``BF16``), from a header."""
    from safetensors import safe_open

    files = sorted(weights.glob("*.safetensors"))
    if not files:
        return None
    with safe_open(str(files[0]), framework="pt") as handle:
        floats = [handle.get_slice(name).get_dtype() for name in list(handle.keys())[:50]]
    return next((d for d in floats if d in ("F32", "F16", "BF16")), None)


def weights_identity(weights: Path) -> dict:
    """Path, commit, random flag and preset of a weights folder (from its manifest when present)."""
    return {"path": str(weights), **identity(weights)}


def describe_environment(device: str) -> dict:
    """Host, versions and the GPU (name, compute capability, driver) a benchmark ran on."""
    import platform
    from importlib import metadata

    import torch

    from sam3ops.tracking import sysinfo, workspace_root

    env = {k: v for k, v in sysinfo.environment_tags(workspace_root()).items() if k != "mlflow_version"}
    for dist, key in (("tensorrt", "tensorrt_version"), ("onnxruntime", "onnxruntime_version"),
                      ("onnxruntime-gpu", "onnxruntime_version")):
        with contextlib.suppress(metadata.PackageNotFoundError):
            env[key] = metadata.version(dist)
    env.setdefault("tensorrt_version", "not installed")
    env.update(device=device, cpu=platform.processor() or platform.machine(), cpu_count=torch.get_num_threads())
    if device.startswith("cuda") and torch.cuda.is_available():
        index = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(index)
        env.update(gpu_name=props.name, compute_capability=f"{props.major}.{props.minor}",
                   gpu_memory_mb=round(props.total_memory / 2**20))
        with contextlib.suppress(Exception):
            import pynvml

            pynvml.nvmlInit()
            env["driver_version"] = pynvml.nvmlSystemGetDriverVersion()
    else:
        env["gpu_name"] = "cpu"
    return env
