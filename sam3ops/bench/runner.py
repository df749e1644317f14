"""The benchmark core: every (runtime, precision) at every batch size, measured, without mlflow.

For each configuration: load (timed: the cold start), one first call (timed apart: lazy
initialisation, compilation), then per batch size a warm-up and the measured calls, with the
host's peak RSS, torch's and NVML's GPU memory and NVML's power around the measured calls only.
An out-of-memory at one batch size is recorded and the sweep goes on. Accuracy comes with speed:
each configuration is compared with the fp32 torch reference on the same photos and prompts.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from pathlib import Path

from sam3ops.bench.config import BenchConfig
from sam3ops.bench.describe import (
    check_device,
    check_folder,
    configurations,
    describe_environment,
    stored_dtype,
    weights_identity,
)
from sam3ops.bench.memory import GpuProbe, HostPeak
from sam3ops.bench.results import BatchResult, BenchResults, ConfigResult
from sam3ops.bench.timers import Timer, measure
from sam3ops.bench.workload import Workload
from sam3ops.errors import Sam3opsError

log = logging.getLogger(__name__)


def _is_oom(exc: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or the CPU allocator's RuntimeError ("can't allocate memory")."""
    import torch

    text = str(exc).lower()
    return (isinstance(exc, (torch.OutOfMemoryError, MemoryError))
            or any(s in text for s in ("out of memory", "can't allocate memory", "not enough memory")))


def _free(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


class _Probes:
    """Host and GPU probes around the measured calls of one batch size."""

    def __init__(self, device: str, segmenter):
        self.device, self.segmenter = device, segmenter
        self.host, self.gpu = HostPeak(), None

    @contextlib.contextmanager
    def __call__(self):
        self.segmenter.reset_timings()  # the stage split covers measured calls only
        with contextlib.ExitStack() as stack:
            stack.enter_context(self.host)
            if self.device.startswith("cuda"):
                self.gpu = stack.enter_context(GpuProbe(self.device))
            yield


def _measure_batch(segmenter, config: BenchConfig, batch: int, timer: Timer) -> BatchResult:
    workload = Workload.build(image_size=config.image_size, batch=batch, prompts_per_image=config.prompts_per_image,
                              photos=config.photos)

    def call(i: int) -> None:
        segmenter.clear_text_cache()  # each call encodes its prompts: the text encoder is measured
        segmenter.segment(workload.images(i), workload.prompts_for(i))

    probes = _Probes(config.device, segmenter)
    seen = measure(call, timer=timer, warmup=config.warmup, iterations=config.iterations,
                   min_duration_s=config.min_duration_s, measuring=probes)
    calls = len(seen.seconds)
    stages = {stage: 1000.0 * seconds / calls for stage, seconds in segmenter.timings.seconds.items()}
    result = BatchResult(batch=batch, latency=seen.stats, stages_ms=stages,
                         first_call_ms=1000.0 * seen.first_call_s if seen.first_call_s is not None else None,
                         host_rss_peak_mb=probes.host.peak_mb)
    if probes.gpu is not None:
        gpu = probes.gpu.reading
        if not _torch_owns_memory(segmenter):  # ONNX Runtime / TensorRT weights live outside torch's allocator
            gpu.allocated_peak_mb = gpu.reserved_peak_mb = None
        result.vram_peak_mb, result.vram_reserved_mb = gpu.allocated_peak_mb, gpu.reserved_peak_mb
        result.vram_nvml_source = gpu.extra.get("nvml_memory_source")
        result.vram_nvml_mb, result.gpu_util_pct, result.power_w = (gpu.nvml_process_peak_mb,
                                                                    gpu.utilization_mean_pct, gpu.power_mean_w)
        if gpu.energy_j is not None:
            result.energy_j_per_image = gpu.energy_j / (calls * batch)
    return result


def _torch_owns_memory(segmenter) -> bool:
    from sam3ops.inference.core import TorchCore
    from sam3ops.inference.meta_core import MetaCore

    return isinstance(segmenter.core, (TorchCore, MetaCore))


def _load(weights: Path, runtime: str, precision: str, device: str, *, score_threshold: float = 0.5,
          options=None):
    from sam3ops.inference.segmenter import Segmenter

    return Segmenter.from_dir(weights, device=device, precision=precision, compile=runtime == "torch-compile",
                              runtime="meta" if runtime == "meta" else "auto", score_threshold=score_threshold,
                              options=options)


def _parity_inputs(config: BenchConfig) -> tuple[list, list[str]]:
    """The photos and prompts every configuration's accuracy is checked on (the benchmark's own)."""
    workload = Workload.build(image_size=config.image_size, batch=2, prompts_per_image=config.prompts_per_image,
                              photos=config.photos)
    return workload.images(0), workload.prompts_for(0)


def reference_results(reference_weights: Path, config: BenchConfig) -> list:
    """fp32 results on the parity inputs (torch; Meta's own model for a Meta-layout folder); the reference
    model is freed before anything is measured, so it never counts in another configuration's memory."""
    from sam3ops.convert import parity

    reference = _load(reference_weights, "torch", "fp32", config.device)
    results = parity.every_query(reference, *_parity_inputs(config))
    del reference
    _free(config.device)
    return results


def run_config(config: BenchConfig, weights: Path, runtime: str, precision: str,
               reference: list | None = None) -> ConfigResult:
    """Benchmark one (runtime, precision) at every batch size of ``config``."""
    options = config.torch_options(runtime)
    result = ConfigResult(runtime=runtime, precision=precision, device=config.device, options=config.options)
    timer = Timer(config.device)
    started = time.perf_counter()
    segmenter = _load(weights, runtime, precision, config.device, options=options)
    result.load_s = time.perf_counter() - started
    if hasattr(segmenter.core, "attention"):
        result.attention = segmenter.core.attention()
    log.info("%s: loaded in %.1f s", result.name, result.load_s)
    first = Workload.build(image_size=config.image_size, batch=config.batches[0],
                           prompts_per_image=config.prompts_per_image, photos=config.photos)
    try:
        result.first_call_s = timer.time(lambda: segmenter.segment(first.images(0), first.prompts_for(0)))
    except Exception as exc:
        if not _is_oom(exc):
            raise
        log.warning("%s: out of memory on the first call at batch %d", result.name, config.batches[0])
    for batch in config.batches:
        try:
            measured = _measure_batch(segmenter, config, batch, timer)
        except Sam3opsError as exc:  # e.g. a batch beyond an engine's profile: recorded, the sweep goes on
            measured = BatchResult(batch=batch, status="error", error=exc.one_line())
        except Exception as exc:
            if not _is_oom(exc):
                raise
            measured = BatchResult(batch=batch, status="oom", error=" ".join(str(exc).split())[:300])
        if measured.status == "oom":
            _free(config.device)  # outside the handler: its traceback no longer pins the failed call's tensors
        log.info("%s batch %d: %s", result.name, batch,
                 f"{measured.latency.p50_ms:.1f} ms p50" if measured.latency else measured.status)
        result.batches.append(measured)
    if options.compile != "off" and result.first_call_s is not None and result.batches[0].latency:
        result.compile_s = max(0.0, result.first_call_s - result.batches[0].latency.mean_ms / 1000.0)
    if reference is not None:
        from sam3ops.convert import parity

        candidate = parity.every_query(segmenter, *_parity_inputs(config))
        result.parity = parity.compare_results(reference, candidate).to_json()
    return result


def run_benchmark(config: BenchConfig, *, reference_weights: Path | None = None,
                  reference_cache: dict | None = None) -> BenchResults:
    """Measure every configuration of ``config``; return the results (nothing is logged here).

    Args:
        config: what to measure.
        reference_weights: safetensors weights for the fp32 torch reference (default: ``weights``
            when it holds safetensors; for ONNX graphs or engines pass their source folder, else
            accuracy is not reported), or a Meta-layout folder: Meta's own model is the reference.
        reference_cache: a dict kept between calls (a benchmark plan's steps): the fp32 reference
            of the same weights, photos, size and prompts is computed once.

    Raises:
        UsageError: a runtime that cannot run the weights, CUDA without a GPU, ...
        WeightsError: missing or incomplete weights.
    """
    weights = check_folder(Path(config.weights))
    check_device(config.device)
    pairs = configurations(config, weights)
    if reference_weights is None and (pairs[0][0] == "meta" or (
            pairs[0][0] in ("torch", "torch-compile") and stored_dtype(weights) == "F32")):
        reference_weights = weights  # fp32 on disk (or Meta's sam3.pt): the reference is these weights
    reference_dir = check_folder(Path(reference_weights)) if reference_weights is not None else None

    def is_reference(pair: tuple[str, str]) -> bool:  # the reference itself: nothing to compare
        return reference_dir == weights and pair in (("torch", "fp32"), ("meta", "fp32")) and not config.options

    needs_reference = config.parity and not all(is_reference(pair) for pair in pairs)
    reference = None
    if needs_reference and reference_dir is not None:
        key = (str(reference_dir), config.image_size, config.prompts_per_image, config.photos)
        cache = reference_cache if reference_cache is not None else {}
        if key not in cache:
            cache[key] = reference_results(reference_dir, config)
        reference = cache[key]
    elif needs_reference:
        log.warning("no fp32 reference for %s: pass --reference with its fp32 safetensors source (or a Meta "
                    "checkpoint) to report accuracy", weights)
    results = BenchResults(config=config.to_json(), environment=describe_environment(config.device),
                           weights=weights_identity(weights))
    for runtime, precision in pairs:
        ref = None if is_reference((runtime, precision)) else reference
        results.configs.append(run_config(config, weights, runtime, precision, ref))
        _free(config.device)  # the configuration's model is gone with run_config's frame: release its memory
    return results


