"""The benchmark stage: latency, throughput, memory and accuracy per runtime, precision and batch.

Measurement (:mod:`config`, :mod:`timers`, :mod:`memory`, :mod:`workload`, :mod:`runner`,
:mod:`results`) imports torch but never mlflow, so it runs on a bare GPU host and writes JSON;
:mod:`track` logs results to MLflow, :mod:`charts` draws them, :mod:`compare` reads runs back.
"""

from sam3ops.bench.config import BenchConfig, parse_batches
from sam3ops.bench.results import BatchResult, BenchResults, ConfigResult
from sam3ops.bench.runner import run_benchmark

__all__ = ["BatchResult", "BenchConfig", "BenchResults", "ConfigResult", "parse_batches", "run_benchmark"]
