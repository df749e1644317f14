"""AOTInductor packages: the inference core's three parts compiled ahead of time.

Each part is the same tensor-in/tensor-out module the ONNX export uses
(:mod:`sam3ops.convert.onnx.export`), captured by ``torch.export`` with a dynamic batch axis over
``min_batch..max_batch`` (from batch-2 examples: an example of batch 1 would specialise the axis
to 1) and compiled by ``torch._inductor.aoti_compile_and_package`` into ``vision.pt2``,
``text.pt2`` and ``decoder.pt2``: shared libraries with their weights inside, which
``torch._inductor.aoti_load_package`` runs without the model's Python code. ``aoti.json`` beside
them records what they are tied to (torch release, device, GPU or CPU instruction set), the batch
range, precision and compile seconds. The folder also carries config, processor and tokenizer
files and ``manifest.json``, and appears whole or not at all.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from sam3ops.checkpoint.atomic import atomic_write
from sam3ops.checkpoint.layout import AOTI_PACKAGES, AOTI_SIDECAR
from sam3ops.convert.config import FORMAT_PRECISIONS, check_batch_range
from sam3ops.errors import UsageError, WeightsError

log = logging.getLogger(__name__)

PRECISIONS = FORMAT_PRECISIONS["aoti"]
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# Inductor options for every part. The generated C++ wrapper only calls the kernels (which stay at
# -O3) in order, and g++ spends much of a part's compile time on it at the default -O1: -O0 builds
# packages with the same outputs (tiny preset, torch 2.14.1, CPU). Only where this torch has the
# option: an unknown one fails the compile (the GPU host runs an older torch).
INDUCTOR_OPTIONS: dict[str, str] = (
    {"aot_inductor.compile_wrapper_opt_level": "O0"}
    if hasattr(torch._inductor.config.aot_inductor, "compile_wrapper_opt_level") else {})


@dataclass
class AotiBuild:
    """What ``build_packages`` wrote."""

    output: Path
    packages: list[Path]
    precision: str
    bytes_written: int
    compile_seconds: dict[str, float]  # package -> torch.export + AOTInductor seconds
    sidecar: dict


def build_packages(*, source: Path, output: Path, precision: str = "fp32", device: str = "cpu",
                   batch: tuple[int, int] = (1, 16), overwrite: bool = False) -> AotiBuild:
    """Compile the three parts of the weights folder ``source`` into AOTInductor packages in ``output``.

    Args:
        source: a safetensors weights folder (download or init).
        output: the destination folder (must be empty unless ``overwrite``).
        precision: the weights' dtype inside the packages (inputs and outputs of the vision
            package stay float32 in, that dtype out).
        device: ``cpu`` or a CUDA device: the packages run only on that device type.
        batch: the (min, max) batch every package accepts.

    Raises:
        WeightsError, UsageError: a missing or non-safetensors source, a non-empty output, an
            unknown precision, a bad batch range, CUDA asked for without a GPU.
    """
    from transformers import Sam3Model

    from sam3ops.checkpoint.derive import derived_folder
    from sam3ops.checkpoint.kinds import check_weights_dir, require_empty
    from sam3ops.inference.aoti_core import input_layout, machine
    from sam3ops.inference.core import TorchCore
    from sam3ops.inference.device import resolve_device

    if precision not in PRECISIONS:
        raise UsageError(f"AOTInductor packages do not do precision {precision!r}",
                         hint=f"choose one of: {', '.join(PRECISIONS)}")
    check_batch_range(*batch)
    torch_device = resolve_device(device)
    source, output = check_weights_dir(Path(source)), Path(output)
    if not any(source.glob("*.safetensors")):
        raise WeightsError(f"{source} holds no safetensors weights to compile",
                           hint="compile from a safetensors weights folder (download or init)")
    require_empty(output, overwrite=overwrite)  # before loading the model for nothing
    core = TorchCore(Sam3Model.from_pretrained(source, dtype=DTYPES[precision]).to(torch_device))
    seconds: dict[str, float] = {}
    layouts: dict[str, list[str]] = {}
    with derived_folder(source, output, label="aoti", overwrite=overwrite) as derived:
        for name, (module, args) in _parts(core, source).items():
            log.info("compiling %s", name)
            started = time.perf_counter()
            _compile(module, args, derived.staging / name, batch)
            seconds[name] = round(time.perf_counter() - started, 2)
            layouts[name] = [input_layout(t) for t in args]
        sidecar = {**machine(str(torch_device)), "precision": precision, "min_batch": batch[0],
                   "max_batch": batch[1], "compile_seconds": seconds, "input_layouts": layouts,
                   "inductor_options": INDUCTOR_OPTIONS}
        atomic_write(derived.staging / AOTI_SIDECAR, json.dumps(sidecar, indent=2) + "\n")
    packages = [output / name for name in AOTI_PACKAGES]
    return AotiBuild(output, packages, precision, sum(p.stat().st_size for p in packages), seconds, sidecar)


def _parts(core, source: Path) -> dict[str, tuple[torch.nn.Module, tuple]]:
    """Each package's module and its batch-2 example inputs (the decoder's from one real encoder pass).

    A package reads its inputs with the strides of these examples, unchecked: the decoder's must have
    the layout the vision encoder hands it (channels-last feature maps), so they are two copies of
    one image's features in that layout, not ``.contiguous()`` ones (those made a decoder whose masks
    were wrong when fed the encoder's own features).
    """
    from transformers import Sam3Processor

    from sam3ops.convert.onnx.export import _Decoder, _Text, _Vision

    processor = Sam3Processor.from_pretrained(source)
    size = processor.image_processor.size["height"]
    pixel_values = torch.zeros(2, 3, size, size, device=core.device)
    text = processor.tokenizer(["person", "cat"], padding="max_length", truncation=True,
                               max_length=processor.tokenizer.model_max_length, return_tensors="pt").to(core.device)
    with torch.no_grad():
        vision = tuple(torch.cat([t, t]) for t in _Vision(core)(pixel_values[:1]))  # cat keeps the layout
        features = _Text(core)(text.input_ids, text.attention_mask)
    return {"vision.pt2": (_Vision(core), (pixel_values,)),
            "text.pt2": (_Text(core), (text.input_ids, text.attention_mask)),
            "decoder.pt2": (_Decoder(core), (*vision, features, text.attention_mask))}


def _compile(module: torch.nn.Module, args: tuple, path: Path, batch: tuple[int, int]) -> None:
    """torch.export ``module`` with a dynamic batch axis on every input, then AOTInductor into ``path``."""
    import warnings

    from sam3ops.convert.onnx.export import traceable_geometry_encoder

    dim = torch.export.Dim("batch", min=batch[0], max=batch[1])
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # per-layer notes on Python control flow: noise here
        with traceable_geometry_encoder():  # the decoder's padding box, without roi_align's fixed batch
            program = torch.export.export(module, args, dynamic_shapes=tuple({0: dim} for _ in args), strict=False)
        torch._inductor.aoti_compile_and_package(program, package_path=str(path),
                                                 inductor_configs=dict(INDUCTOR_OPTIONS))
