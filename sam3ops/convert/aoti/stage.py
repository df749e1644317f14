"""The aoti conversion inside a convert run: compile the packages, log what they are tied to."""

from __future__ import annotations

from pathlib import Path

from sam3ops.convert.aoti.build import AotiBuild, build_packages
from sam3ops.convert.config import ConvertConfig

# Sidecar key -> run tag (and so version tag, see sam3ops.registry.tags).
TAGS = {"torch_version": "torch_version", "device": "aoti_device", "gpu_name": "gpu_name",
        "compute_capability": "compute_capability", "cpu_isa": "cpu_isa"}


def convert_aoti(config: ConvertConfig, source: Path) -> AotiBuild:
    """Build the AOTInductor packages of ``config`` from ``source`` (the input, or a Meta input read as
    an fp32 transformers folder) in the active run; tag what they are tied to (``torch_version
    aoti_device gpu_name compute_capability cpu_isa``) and log ``compile_s_<part>``."""
    import mlflow

    result = build_packages(source=Path(source), output=Path(config.output), precision=config.precision,
                            device=config.device, batch=(config.min_batch, config.max_batch),
                            overwrite=config.overwrite)
    mlflow.set_tags({tag: str(result.sidecar[key]) for key, tag in TAGS.items() if result.sidecar.get(key)})
    mlflow.log_metrics({f"compile_s_{name.split('.')[0]}": s for name, s in result.compile_seconds.items()})
    return result
