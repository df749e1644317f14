"""The model core on AOTInductor: the three compiled packages of ``convert --format aoti``.

Each part (``vision.pt2``, ``text.pt2``, ``decoder.pt2``) is a shared library that
``torch._inductor.aoti_load_package`` loads without the model's Python code. A package is tied to
what compiled it, as ``aoti.json`` beside the packages records: the torch release (the generated
code calls torch's C++ runtime), the device type (CPU code or CUDA kernels), and the GPU's compute
capability (CUDA kernels are built for one architecture) or the CPU's vector instruction set (CPU
kernels are built with ``-march=native``). A mismatch is refused in one line unless forced. A batch
over the compiled range runs in chunks of its maximum (with a warning); one under it is padded.
Each input is handed over in the memory layout its package was compiled for (``input_layouts``
in ``aoti.json``): a package does not check the strides it reads.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import torch

from sam3ops.checkpoint.kinds import aoti_sidecar
from sam3ops.checkpoint.layout import AOTI_PACKAGES, AOTI_SIDECAR
from sam3ops.errors import ServingError, UsageError, WeightsError
from sam3ops.inference.core import Outputs, VisionFeatures

log = logging.getLogger(__name__)


def torch_release(version: str | None = None) -> str:
    """The release part of a torch version (``2.14.1+cu130`` -> ``2.14.1``): the local tag names the
    build (CUDA or CPU wheel), which the device check covers."""
    return (version or torch.__version__).split("+")[0]


def machine(device: str) -> dict[str, str | None]:
    """What a package compiled here for ``device`` is tied to: torch release, device type, and the
    GPU (name, compute capability) or the CPU's vector instruction set."""
    kind = torch.device(device).type
    here: dict[str, str | None] = {"torch_version": torch_release(), "device": kind, "gpu_name": None,
                                   "compute_capability": None, "cpu_isa": None}
    if kind == "cuda" and torch.cuda.is_available():
        index = torch.device(device).index or 0
        here["gpu_name"] = torch.cuda.get_device_name(index)
        here["compute_capability"] = "{}.{}".format(*torch.cuda.get_device_capability(index))
    elif kind == "cpu":
        with contextlib.suppress(Exception):  # inductor's probe compiles a test program: g++ may be missing
            from torch._inductor.cpu_vec_isa import pick_vec_isa

            here["cpu_isa"] = str(pick_vec_isa()) or "none"
    return here


def input_layout(tensor: torch.Tensor) -> str:
    """``channels_last`` for a 4-D tensor laid out so (and not also plain contiguous), else ``contiguous``."""
    if tensor.dim() == 4 and not tensor.is_contiguous() and tensor.is_contiguous(memory_format=torch.channels_last):
        return "channels_last"
    return "contiguous"


def in_layouts(inputs: tuple[torch.Tensor, ...], layouts: list[str] | None) -> tuple[torch.Tensor, ...]:
    """``inputs`` in the ``layouts`` a package was compiled for (a copy only where one differs).

    A package reads each input with the strides of its compile-time example and does not check
    them: a tensor in another layout is read wrongly, silently. ``None`` (a sidecar from before
    layouts were recorded) leaves the inputs as they are.
    """
    if not layouts:
        return inputs
    formats = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}
    return tuple(t.contiguous(memory_format=formats[layout]) for t, layout in zip(inputs, layouts))


def mismatches(sidecar: dict, here: dict[str, str | None]) -> list[str]:
    """Why packages with this ``sidecar`` may not run on ``here`` (see :func:`machine`); empty when they can."""
    problems = []
    built = torch_release(str(sidecar.get("torch_version", "unknown")))
    if built != here["torch_version"]:
        problems.append(f"the packages were compiled with torch {built}, this machine has {here['torch_version']}")
    if here["device"] == "cuda" and sidecar.get("compute_capability") != here["compute_capability"]:
        problems.append(f"the packages were compiled for {sidecar.get('gpu_name', 'unknown')} (compute "
                        f"{sidecar.get('compute_capability', '?')}), this machine has {here['gpu_name']} "
                        f"(compute {here['compute_capability']})")
    if here["device"] == "cpu" and sidecar.get("cpu_isa") not in (None, "none", here["cpu_isa"]):
        problems.append(f"the packages were compiled for CPUs with {sidecar['cpu_isa']}, this machine's best is "
                        f"{here['cpu_isa']}")
    return problems


def check_packages(folder: Path, device: str, *, force: bool = False) -> dict:
    """The sidecar of the AOTInductor folder ``folder`` when its packages can run on ``device``.

    Raises:
        WeightsError: no readable ``aoti.json``.
        UsageError: the packages were compiled for another device type (CPU code cannot run on a
            GPU, nor CUDA kernels on a CPU); never forced.
        ServingError: another torch release, GPU architecture or CPU instruction set, unless ``force``
            (then each mismatch is a warning).
    """
    sidecar = aoti_sidecar(folder)
    if not sidecar:
        raise WeightsError(f"{folder} has no readable {AOTI_SIDECAR} beside its packages",
                           hint="convert again: sam3ops convert --format aoti")
    kind = torch.device(device).type
    if sidecar.get("device") != kind:
        raise UsageError(f"{folder} holds AOTInductor packages compiled for {sidecar.get('device')}, not {kind}",
                         hint=f"use --device {sidecar.get('device')}, or convert again with --device {kind}")
    problems = mismatches(sidecar, machine(device))
    if problems and not force:
        raise ServingError(f"{folder} cannot run here: {'; '.join(problems)}",
                           hint="an AOTInductor package runs on the torch release and device type that compiled "
                                "it (see aoti.json): convert again on this machine, or load with force=True")
    for problem in problems:
        log.warning("running %s anyway (forced): %s", folder, problem)
    return sidecar


class AotiCore:
    """``encode_image`` / ``encode_text`` / ``decode`` on the three AOTInductor packages of ``folder``.

    Args:
        folder: a ``convert --format aoti`` folder.
        device: where to run; its type must be the one the packages were compiled for.
        force: run packages of another torch release, GPU or CPU instruction set anyway.

    Raises:
        WeightsError, UsageError, ServingError: see :func:`check_packages`.
    """

    def __init__(self, folder: Path, *, device: str = "cpu", force: bool = False):
        folder = Path(folder)
        sidecar = check_packages(folder, device, force=force)
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(sidecar.get("precision"), torch.float32)
        self.min_batch, self.max_batch = int(sidecar.get("min_batch", 1)), int(sidecar.get("max_batch", 1))
        self.layouts: dict[str, list[str]] = sidecar.get("input_layouts") or {}
        index = self.device.index if self.device.type == "cuda" else -1
        self.runners = {name: torch._inductor.aoti_load_package(str(folder / name), device_index=index)
                        for name in AOTI_PACKAGES}
        self._warned = False

    def _run(self, package: str, *inputs: torch.Tensor) -> list[torch.Tensor]:
        """The package's outputs for ``inputs``, in chunks of the compiled maximum batch."""
        inputs = tuple(t.to(self.device) for t in inputs)
        batch = inputs[0].shape[0]
        if batch <= self.max_batch:
            return self._call(package, inputs)
        if not self._warned:
            log.warning("batch %d is over the packages' compiled maximum %d: running it in chunks", batch,
                        self.max_batch)
            self._warned = True
        parts = [self._call(package, tuple(t[s:s + self.max_batch] for t in inputs))
                 for s in range(0, batch, self.max_batch)]
        return [torch.cat(outputs) for outputs in zip(*parts)]

    def _call(self, package: str, inputs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        """One call of a batch within the maximum; one under the minimum is padded with its last item."""
        batch = inputs[0].shape[0]
        if batch < self.min_batch:
            inputs = tuple(torch.cat([t, t[-1:].expand(self.min_batch - batch, *t.shape[1:])]) for t in inputs)
        outputs = self.runners[package](*in_layouts(inputs, self.layouts.get(package)))
        # A package returns its exported module's output as it was (torch.export keeps the pytree): a
        # tuple for the vision encoder and decoder, a lone tensor for the text encoder. Iterating that
        # tensor would walk its batch rows, and [0] of them is the first prompt's features only.
        if isinstance(outputs, torch.Tensor):
            outputs = (outputs,)
        return [out[:batch] for out in outputs]

    @torch.inference_mode()
    def encode_image(self, pixel_values: torch.Tensor) -> VisionFeatures:
        return VisionFeatures(*self._run("vision.pt2", pixel_values.float()))

    @torch.inference_mode()
    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self._run("text.pt2", input_ids, attention_mask)[0]

    @torch.inference_mode()
    def decode(self, vision: VisionFeatures, text_features: torch.Tensor, attention_mask: torch.Tensor) -> Outputs:
        return Outputs(*self._run("decoder.pt2", *vision, text_features.to(self.dtype), attention_mask))
