"""What an engine's ``.json`` sidecar records of the machine that built it: GPU, driver, TensorRT and CUDA.

The CUDA version is TensorRT's own, not torch's (they can differ: torch cu130 beside TensorRT's
CUDA 12 wheels is installable, and an engine needs the CUDA that TensorRT was built for). The
``tensorrt`` module does not say which CUDA it was built against; its pip wheels do: they are
``tensorrt-cuNN`` / ``tensorrt-cuNN-libs``, and the libs wheel requires the CUDA runtime wheel it
loads (``nvidia-cuda-runtime-cuNN``, or ``nvidia-cuda-runtime`` for CUDA 13). Where TensorRT came
from elsewhere (a tarball, a container image), the CUDA version is recorded as null.
"""

from __future__ import annotations

import contextlib
import re
from importlib import metadata

_CUDA_MAJORS = (11, 12, 13, 14)


def _runtime_of(libs: metadata.Distribution) -> str | None:
    for requirement in libs.requires or []:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group()
        if "cuda-runtime" in name.replace("_", "-"):
            with contextlib.suppress(metadata.PackageNotFoundError):
                return f"{name} {metadata.version(name)}"
    return None


def tensorrt_cuda() -> tuple[str | None, str]:
    """(CUDA version TensorRT was built for, where that was read) from the installed TensorRT wheels.

    The version is the CUDA runtime wheel's ``major.minor`` (e.g. ``12.9``) when TensorRT's libs wheel
    pulled one in, else the major of the ``tensorrt-cuNN`` wheel (``12``), else None.
    """
    for major in _CUDA_MAJORS:
        for name in (f"tensorrt-cu{major}-libs", f"tensorrt-cu{major}"):
            try:
                dist = metadata.distribution(name)
            except metadata.PackageNotFoundError:
                continue
            source = f"{name} {dist.version}"
            runtime = _runtime_of(dist)
            if runtime:
                found = re.search(rf"\b({major}\.\d+)", runtime.split()[-1])
                return (found.group(1) if found else str(major)), f"{source} requires {runtime}"
            return str(major), source
    return None, "no tensorrt-cuNN wheel installed: TensorRT's CUDA version is unknown"


def build_environment(trt) -> dict:
    """GPU, driver, TensorRT and CUDA versions for the sidecar (on the current CUDA device)."""
    import torch

    index = torch.cuda.current_device()
    major, minor = torch.cuda.get_device_capability(index)
    driver = None
    with contextlib.suppress(Exception):  # NVML is optional here: the sidecar says null then
        import pynvml

        pynvml.nvmlInit()
        driver = pynvml.nvmlSystemGetDriverVersion()
    cuda, source = tensorrt_cuda()
    return {"tensorrt_version": trt.__version__, "gpu_name": torch.cuda.get_device_name(index),
            "compute_capability": f"{major}.{minor}", "cuda_version": cuda, "cuda_version_source": source,
            "torch_cuda_version": torch.version.cuda, "driver_version": driver}
