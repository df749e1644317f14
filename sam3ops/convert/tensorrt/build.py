"""TensorRT engines from the three ONNX graphs, built with the TensorRT Python API.

One engine per graph (``vision.engine``, ``text.engine``, ``decoder.engine``), each with one
optimization profile over the batch axis (min/opt/max; every other dimension fixed from the
graph), a workspace limit, and a timing cache read from and written back to a file, so later
builds (other graphs, other profiles, the next run) skip the kernel timings already made. Beside
each engine, ``<engine>.json`` records the TensorRT version and the CUDA version TensorRT was built
for (see :mod:`.sidecar`), the GPU and its compute capability, the precision, whether TF32 may be
used, the profiles and the build time. A timing cache that this TensorRT rejects (another version's)
is replaced by a fresh one, with a warning. "fp32" engines are built with TF32 cleared (TensorRT
enables it by default); fp16/bf16 engines keep it for the layers left in fp32, and say so. The
output folder also carries the config, processor and tokenizer files and ``manifest.json``, and
appears whole or not at all.

Precision: on TensorRT 10, fp16 and bf16 are builder flags over the fp32 graph (TensorRT picks
per layer: "weak typing", deprecated since 10.12 but the most accurate route there). TensorRT 11
removed those flags and builds "strongly typed" networks whose types come from the graph: there an
fp16 engine is built from float16 graphs (made here with onnxconverter-common, or given as input),
and bf16 is refused. Float16 graphs as input are always built strongly typed.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sam3ops.checkpoint.atomic import atomic_write
from sam3ops.checkpoint.layout import ENGINES as layout_engines
from sam3ops.checkpoint.layout import ONNX_GRAPHS
from sam3ops.convert.config import (
    DEFAULT_BATCH_PROFILE,
    DEFAULT_WORKSPACE_GB,
    FORMAT_PRECISIONS,
    check_batch_profile,
    check_workspace,
)
from sam3ops.convert.tensorrt.sidecar import build_environment
from sam3ops.errors import TensorRTBuildError, UsageError, WeightsError
from sam3ops.inference.trt_core import require_tensorrt, trt_logger

log = logging.getLogger(__name__)

ENGINES = dict(zip(ONNX_GRAPHS, layout_engines))  # graph -> the engine built from it
PRECISIONS = FORMAT_PRECISIONS["tensorrt"]
DEFAULT_BATCH = DEFAULT_BATCH_PROFILE


@dataclass
class EngineBuild:
    """What ``build_engines`` wrote."""

    output: Path
    engines: list[Path]
    precision: str
    typing: str  # "weak" (builder flags) or "strong" (types from the graph)
    bytes_written: int
    build_seconds: dict[str, float]
    sidecar: dict  # the vision engine's sidecar: versions and GPU, shared by all three


def check_options(*, precision: str, batch: tuple[int, int, int], workspace_gb: float) -> tuple[int, int, int]:
    """Validate the build options (no TensorRT needed); return the batch profile as ints.

    Raises:
        UsageError: unknown precision, a profile that is not 1 <= min <= opt <= max, a workspace <= 0.
    """
    if precision not in PRECISIONS:
        raise UsageError(f"TensorRT precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    check_batch_profile(batch)
    check_workspace(workspace_gb)
    return tuple(batch)


def _save_cache(path: Path, blob: bytes) -> None:
    # A unique temporary name per writer: two builds that share a cache never write into one file.
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, blob)


def _tf32(trt, config, precision: str) -> bool:
    """Clear TF32 for fp32 engines (on by default, it rounds matmul and conv inputs to 10 mantissa
    bits); return whether the engine may use it, for the sidecar."""
    if not hasattr(trt.BuilderFlag, "TF32"):
        return False
    if precision == "fp32":
        config.clear_flag(trt.BuilderFlag.TF32)
    return bool(config.get_flag(trt.BuilderFlag.TF32))


def _attach_timing_cache(config, cache_blob: bytes) -> None:
    """Attach the timing cache read from the file, or a fresh one where TensorRT rejects it.

    ``create_timing_cache`` returns None for a cache of another TensorRT version (or not a cache);
    ``set_timing_cache`` returns False for one of another GPU (or version). Either way the build starts from an
    empty cache, and the file is overwritten with this TensorRT's cache afterwards.
    """
    cache = config.create_timing_cache(cache_blob)
    if cache is None:
        log.warning("the timing cache file was not made by this TensorRT version: starting a fresh one")
    elif not config.set_timing_cache(cache, ignore_mismatch=False):
        log.warning("the timing cache was made by another TensorRT or GPU: starting a fresh one")
        cache = None
    if cache is None:
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)


def _build_one(trt, logger, graph: Path, engine: Path, *, precision: str, strong: bool, batch, workspace_gb: float,
               cache_blob: bytes) -> tuple[float, dict, bytes, bool]:
    """Build ``graph`` into ``engine``; return (seconds, profiles, the timing cache after the build, TF32 on)."""
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strong else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(graph)):  # by path: external data is read beside the graph
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise TensorRTBuildError(f"TensorRT {trt.__version__} cannot parse {graph.name}: "
                            f"{errors[0] if errors else 'no detail'}{more}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * 2**30))
    if not strong and precision != "fp32":
        config.set_flag(getattr(trt.BuilderFlag, precision.upper()))
    tf32 = _tf32(trt, config, precision)
    _attach_timing_cache(config, cache_blob)
    profile, profiles = builder.create_optimization_profile(), {}
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        dims = list(tensor.shape)
        if any(d < 0 for d in dims[1:]):
            raise TensorRTBuildError(f"{graph.name}: input {tensor.name} {dims} has a dynamic dimension "
                                     "other than the batch")
        shapes = [(b, *dims[1:]) for b in batch]
        profile.set_shape(tensor.name, *shapes)
        profiles[tensor.name] = dict(zip(("min", "opt", "max"), map(list, shapes)))
    if config.add_optimization_profile(profile) < 0:  # the profile's index, or -1 for an invalid one
        raise TensorRTBuildError(f"TensorRT refused the optimization profile of {graph.name}: {profiles}")
    started = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - started
    if serialized is None:
        raise TensorRTBuildError(f"TensorRT could not build {graph.name} ({precision}, batch "
                            f"{'/'.join(map(str, batch))})",
                            hint="see the TensorRT log lines above; a larger --workspace-gb or a smaller "
                                 "--max-batch may help")
    engine.write_bytes(memoryview(serialized))
    return seconds, profiles, bytes(memoryview(config.get_timing_cache().serialize())), tf32


def build_engines(*, source_onnx_dir: Path, output: Path, precision: str = "fp16",
                  batch: tuple[int, int, int] = DEFAULT_BATCH, workspace_gb: float = DEFAULT_WORKSPACE_GB,
                  timing_cache: Path | None = None, overwrite: bool = False) -> EngineBuild:
    """Build the three engines of the ONNX folder ``source_onnx_dir`` into ``output``.

    Args:
        precision: fp16, bf16 or fp32.
        batch: the optimization profile's (min, opt, max) batch, for every input.
        workspace_gb: TensorRT's workspace memory pool limit.
        timing_cache: a file read before and written after each build (created if missing).

    Raises:
        UsageError: bad options, a non-empty ``output``, or a precision the graphs or TensorRT cannot do.
        WeightsError: ``source_onnx_dir`` is not an ONNX folder.
        TensorRTUnavailableError: no tensorrt module or no GPU (checked before anything else).
        TensorRTBuildError: a graph TensorRT cannot parse or build.
    """
    from sam3ops.checkpoint.derive import derived_folder
    from sam3ops.checkpoint.kinds import check_weights_dir, is_onnx_dir, require_empty
    from sam3ops.convert.onnx.fp16 import convert_graph, is_fp16_graph

    batch = check_options(precision=precision, batch=batch, workspace_gb=workspace_gb)
    trt = require_tensorrt()
    source, output = check_weights_dir(Path(source_onnx_dir)), Path(output)
    if not is_onnx_dir(source):
        raise WeightsError(f"{source} holds no ONNX graphs", hint="convert it with --format onnx first")
    require_empty(output, overwrite=overwrite)
    fp16_graphs = is_fp16_graph(source / "vision.onnx")
    if fp16_graphs and precision != "fp16":
        raise UsageError(f"{source} holds float16 graphs: they make fp16 engines only",
                         hint="use --precision fp16, or export fp32 ONNX for fp32/bf16 engines")
    strong = fp16_graphs or (precision != "fp32" and not hasattr(trt.BuilderFlag, precision.upper()))
    if strong and precision == "bf16":
        raise UsageError(f"TensorRT {trt.__version__} has no bf16 builder flag (strongly typed builds only) and "
                         "sam3ops makes no bfloat16 ONNX graphs", hint="use --precision fp16 or fp32")
    timing_cache = Path(timing_cache) if timing_cache else None
    cache_blob = timing_cache.read_bytes() if timing_cache and timing_cache.is_file() else b""
    gpu, seconds, sidecar = build_environment(trt), {}, {}
    with derived_folder(source, output, label="trt", overwrite=overwrite) as derived:
        staging = derived.staging
        with tempfile.TemporaryDirectory(dir=staging) as scratch:  # removed before the folder is renamed
            graphs = source
            if strong and not fp16_graphs:  # fp16 on a TensorRT without the flag: float16 graphs first
                graphs = Path(scratch)
                for path in source.iterdir():
                    if ".onnx" in path.name:
                        shutil.copy(path, graphs / path.name)
                for name in ENGINES:
                    convert_graph(graphs / name)
            for graph, engine in ENGINES.items():
                log.info("building %s (%s, batch %s)", engine, precision, "/".join(map(str, batch)))
                seconds[engine], profiles, cache_blob, tf32 = _build_one(
                    trt, trt_logger(trt), graphs / graph, staging / engine, precision=precision,
                    strong=strong, batch=batch, workspace_gb=workspace_gb, cache_blob=cache_blob)
                if timing_cache:
                    _save_cache(timing_cache, cache_blob)
                data = {"engine": engine, "source_graph": graph, **gpu, "precision": precision, "tf32": tf32,
                        "typing": "strong" if strong else "weak", "profiles": profiles,
                        "workspace_gb": workspace_gb, "build_seconds": round(seconds[engine], 3),
                        "timing_cache": str(timing_cache) if timing_cache else None}
                sidecar = sidecar or data
                (staging / f"{engine}.json").write_text(json.dumps(data, indent=2) + "\n")
    engines = [output / name for name in ENGINES.values()]
    return EngineBuild(output, engines, precision, "strong" if strong else "weak",
                       sum(p.stat().st_size for p in engines), seconds, sidecar)
