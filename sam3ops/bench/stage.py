"""The benchmark stage: measure in a ``benchmark`` run, or log results measured elsewhere."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sam3ops import tracking
from sam3ops.bench.config import SYSTEM_METRICS_INTERVAL_S, BenchConfig
from sam3ops.bench.results import BenchResults, PlanResults, read_any
from sam3ops.bench.track import log_results, requested_params, resolve_weights, run_params
from sam3ops.errors import UsageError
from sam3ops.tracking.result import StageResult


def bench_stage(*, weights: str | None = None, from_json: str | None = None, reference: str | None = None,
                output_json: str | None = None, source_run_id: str | None = None, nested: bool = False,
                **options: Any) -> StageResult[BenchResults]:
    """Benchmark ``weights`` in a ``benchmark`` run, or log the results JSON ``from_json``.

    Every option is validated inside the run, so a bad one ends it FAILED with its one-line error.

    Args:
        weights: a weights folder, ``runs:/RUN/PATH`` or ``models:/NAME@ALIAS``.
        from_json: instead of measuring, log results measured elsewhere (``output_json`` of a bare
            GPU host); its config is not re-validated against this machine.
        reference: fp32 safetensors for the accuracy of ONNX graphs or engines (default: ``weights``).
        output_json: also write the results here.
        source_run_id: the convert or weights run that made ``weights`` (taken from a ``runs:/`` URI
            when not given); tagged, so the registry can attach these numbers to that artifact.
        nested: run as a child of the active run (the pipeline's).
        options: the other fields of :class:`BenchConfig` (runtime, precisions, batches, image_size,
            prompts_per_image, warmup, iterations, min_duration_s, device, parity, photos,
            system_metrics); its defaults apply. ``system_metrics=True`` logs MLflow's system metrics
            on the run (children of a sweep have none: the parent's cover the whole sweep); off, the
            run has none even where ``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING`` is set.

    Returns:
        A :class:`StageResult` whose outputs are the ``BenchResults``.

    Raises:
        UsageError: a bad option (or neither ``weights`` nor ``from_json``), or a results file that
            is missing or not a benchmark result.
        WeightsError: nothing usable at ``weights``.
    """
    if from_json:
        return _log_measured(from_json, nested=nested)
    if not weights:
        raise UsageError("nothing to benchmark", hint="give the weights to measure, or a results JSON to log")
    if source_run_id is None and weights.startswith("runs:/"):
        source_run_id = weights.removeprefix("runs:/").split("/")[0]
    tags = {"source_run_id": source_run_id} if source_run_id else {}
    system_metrics = options.get("system_metrics") is True  # anything else is refused inside the run
    with _sampling_interval(system_metrics), tracking.stage_run(
            "benchmark", params=requested_params(weights, options), tags=tags, nested=nested,
            log_system_metrics=system_metrics) as run:
        from sam3ops.bench.runner import run_benchmark

        config = BenchConfig(weights=str(resolve_weights(weights)), **options)
        results = run_benchmark(config, reference_weights=resolve_weights(reference) if reference else None)
        results.weights["source"] = weights
        if output_json:
            results.write(Path(output_json))
        log_results(results)
    return StageResult(stage="benchmark", run_id=run.info.run_id, outputs=results)


@contextlib.contextmanager
def _sampling_interval(enabled: bool) -> Iterator[None]:
    """MLflow's sampling interval at :data:`SYSTEM_METRICS_INTERVAL_S` while the run starts its sampler.

    A run shorter than one interval gets no system metrics, and MLflow's own is 10 s; an interval
    set in ``MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL`` is kept.
    """
    name = "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"
    if not enabled or os.environ.get(name):
        yield
        return
    os.environ[name] = str(SYSTEM_METRICS_INTERVAL_S)
    try:
        yield
    finally:
        os.environ.pop(name, None)


def _log_measured(path: str, *, nested: bool) -> StageResult[BenchResults]:
    """Log a results JSON measured elsewhere (e.g. a GPU host without mlflow) in a ``benchmark`` run."""
    import mlflow

    with tracking.stage_run("benchmark", params={"from_json": Path(path).name}, tags={"logged_from_json": "true"},
                            nested=nested, log_system_metrics=False) as run:
        try:
            results = read_any(Path(path))
        except FileNotFoundError:
            raise UsageError(f"results file {path} not found",
                             hint="pass the JSON written by `sam3ops bench --output-json`") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{path} is not a sam3ops benchmark result ({' '.join(str(exc).split())[:200]})",
                             hint="pass the JSON written by `sam3ops bench --output-json`") from None
        mlflow.set_tag("measured_on", results.environment.get("host", "unknown"))
        if isinstance(results, PlanResults):
            _log_plan(results)
            return StageResult(stage="benchmark", run_id=run.info.run_id, outputs=results)
        # As measured there: the config is not re-validated against this machine (it may have no GPU).
        mlflow.log_params(run_params(results.config))
        log_results(results)
    return StageResult(stage="benchmark", run_id=run.info.run_id, outputs=results)


def _log_plan(plan: PlanResults) -> None:
    """A plan on the active run: each step with results as a child run (logged as a benchmark is), the
    whole plan (steps without results and their reasons, cold start, profile) as ``benchmark_plan.json``."""
    import dataclasses

    import mlflow

    mlflow.set_tags({"plan_steps": str(len(plan.steps)),
                     "plan_steps_failed": ",".join(s.name for s in plan.steps if s.status not in ("ok", "skipped"))
                     or "none"})
    mlflow.log_dict(dataclasses.asdict(plan), "benchmark_plan.json")
    for step in plan.steps:
        if step.results is None:
            continue
        with tracking.stage_run("benchmark", params={**run_params(step.results.config), "plan_step": step.name},
                                tags={"logged_from_json": "true"}, nested=True, run_name=step.name,
                                log_system_metrics=False):
            log_results(step.results)
