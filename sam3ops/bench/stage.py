"""The benchmark stage: measure in a ``benchmark`` run, or log results measured elsewhere."""

from __future__ import annotations

from pathlib import Path

from sam3ops import tracking
from sam3ops.bench.config import BenchConfig
from sam3ops.bench.results import BenchResults
from sam3ops.bench.track import log_results, resolve_weights, run_params
from sam3ops.errors import UsageError


def bench_stage(*, weights: str, runtime: str = "auto", precision: str = "fp32", batch: str = "1,4,8,16",
                image_size: int = 1008, prompts_per_image: int = 4, warmup: int = 2, iterations: int = 10,
                min_duration_s: float = 0.0, device: str = "cpu", reference: str | None = None,
                parity: bool = True, photos: str | None = None, output_json: str | None = None,
                source_run_id: str | None = None, nested: bool = False):
    """Benchmark in a ``benchmark`` run; return (BenchResults, run id).

    Every parameter is validated inside the run, so a bad one ends it FAILED with its one-line error.
    ``source_run_id`` (the convert or weights run that made the weights; taken from a ``runs:/``
    URI when not given) is tagged, so the registry can attach these numbers to that artifact.
    """
    # runtime and precision are logged once resolved (``auto`` -> torch, onnx, tensorrt); `mlflow run`
    # logs them as given, and the tags of the same names always hold the resolved values.
    raw = {"weights": weights, "batch": batch, "image_size": image_size, "prompts_per_image": prompts_per_image,
           "warmup": warmup, "iterations": iterations, "min_duration": min_duration_s, "device": device,
           "photos": photos}
    if source_run_id is None and weights.startswith("runs:/"):
        source_run_id = weights.removeprefix("runs:/").split("/")[0]
    tags = {"source_run_id": source_run_id} if source_run_id else {}
    with tracking.stage_run("benchmark", params=raw, tags=tags, nested=nested) as run:
        from sam3ops.bench.runner import run_benchmark

        local = resolve_weights(weights)
        config = BenchConfig(weights=str(local), runtime=runtime, precisions=precision, batches=batch,
                             image_size=image_size, prompts_per_image=prompts_per_image, warmup=warmup,
                             iterations=iterations, min_duration_s=min_duration_s, device=device, parity=parity,
                             photos=photos)
        results = run_benchmark(config, reference_weights=resolve_weights(reference) if reference else None)
        results.weights["source"] = weights
        if output_json:
            results.write(Path(output_json))
        log_results(results)
    return results, run.info.run_id


def log_results_stage(*, path: str, nested: bool = False):
    """Log a results JSON measured elsewhere (e.g. a GPU host without mlflow); return (results, run id)."""
    import mlflow

    with tracking.stage_run("benchmark", params={"from_json": Path(path).name}, tags={"logged_from_json": "true"},
                            nested=nested) as run:
        try:
            results = BenchResults.read(Path(path))
        except FileNotFoundError:
            raise UsageError(f"results file {path} not found",
                             hint="pass the JSON written by `sam3ops bench --output-json`") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{path} is not a sam3ops benchmark result ({' '.join(str(exc).split())[:200]})",
                             hint="pass the JSON written by `sam3ops bench --output-json`") from None
        # As measured there: the config is not re-validated against this machine (it may have no GPU).
        mlflow.log_params(run_params(results.config))
        mlflow.set_tag("measured_on", results.environment.get("host", "unknown"))
        log_results(results)
    return results, run.info.run_id
