"""Benchmark results as plain data: JSON in and out, flat rows for tables, metrics for MLflow.

Metric names are the contract in :mod:`sam3ops.bench.metrics` and the README's "Benchmark metrics"
section (``latency_p50_ms`` ... ``parity_mask_iou``), the same in every run so the MLflow compare
view lines runs up. No mlflow import here: results
measured on a bare GPU host are written as JSON and logged later.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sam3ops.bench.timers import LatencyStats

SCHEMA = "sam3ops.bench/1"


@dataclass
class BatchResult:
    """One batch size of one (runtime, precision): latency, throughput, split, memory, power."""

    batch: int
    status: str = "ok"  # ok | oom | error
    error: str | None = None
    latency: LatencyStats | None = None
    first_call_ms: float | None = None
    stages_ms: dict[str, float] = field(default_factory=dict)  # per call: preprocess, vision, text, ...
    host_rss_peak_mb: float | None = None
    vram_peak_mb: float | None = None  # torch, allocated
    vram_reserved_mb: float | None = None
    vram_nvml_mb: float | None = None  # this process as the driver sees it (or the device: see below)
    vram_nvml_source: str | None = None  # process | device (NVML lists host PIDs in containers) | none
    gpu_util_pct: float | None = None
    power_w: float | None = None
    energy_j_per_image: float | None = None

    @property
    def ms_per_image(self) -> float | None:
        return self.latency.mean_ms / self.batch if self.latency else None

    @property
    def throughput_img_s(self) -> float | None:
        return 1000.0 * self.batch / self.latency.mean_ms if self.latency and self.latency.mean_ms > 0 else None

    def metrics(self) -> dict[str, float]:
        """The metrics that were measured, by their contract names (``None`` left out)."""
        if self.latency is None:
            return {}
        lat = self.latency
        values = {
            "latency_p50_ms": lat.p50_ms, "latency_p90_ms": lat.p90_ms, "latency_p99_ms": lat.p99_ms,
            "latency_mean_ms": lat.mean_ms, "latency_std_ms": lat.std_ms, "ms_per_image": self.ms_per_image,
            "throughput_img_s": self.throughput_img_s, "first_call_ms": self.first_call_ms,
            "host_rss_peak_mb": self.host_rss_peak_mb, "vram_peak_mb": self.vram_peak_mb,
            "vram_reserved_mb": self.vram_reserved_mb, "vram_nvml_mb": self.vram_nvml_mb,
            "gpu_util_pct": self.gpu_util_pct, "power_w": self.power_w,
            "energy_j_per_image": self.energy_j_per_image,
            **{(f"{s}_ms" if s in ("preprocess", "postprocess") else f"stage_{s}_ms"): v
               for s, v in self.stages_ms.items()},
        }
        return {key: float(value) for key, value in values.items() if value is not None}


@dataclass
class ConfigResult:
    """Every batch size of one (runtime, precision) on one device, with its cold start and accuracy."""

    runtime: str
    precision: str
    device: str
    load_s: float | None = None
    first_call_s: float | None = None  # the very first call after loading (compiles, builds, allocates)
    compile_s: float | None = None  # torch-compile: first call minus a warm call of the same batch
    parity: dict | None = None  # ParityReport.to_json() against fp32 torch; None for the reference itself
    batches: list[BatchResult] = field(default_factory=list)
    options: dict = field(default_factory=dict)  # TorchOptions that differ from the defaults
    attention: dict | None = None  # the attention kernels the loaded model ran, by module class
    label: str | None = None  # a plan step's name (several steps may share runtime and precision)

    @property
    def name(self) -> str:
        base = f"{self.runtime}-{self.precision}"
        if self.options:
            from sam3ops.inference.tuning import TorchOptions

            base += f"[{TorchOptions.parse(self.options).label()}]"
        return f"{self.label}:{base}" if self.label else base

    def summary_metrics(self) -> dict[str, float]:
        """Metrics measured once per configuration (not per batch)."""
        values = {"load_s": self.load_s, "first_call_s": self.first_call_s, "compile_s": self.compile_s,
                  "parity_mask_iou": (self.parity or {}).get("mask_iou_mean"),
                  "parity_mask_iou_min": (self.parity or {}).get("mask_iou_min"),
                  "parity_score_max_diff": (self.parity or {}).get("score_max_abs_diff"),
                  "oom_batches": sum(b.status == "oom" for b in self.batches)}
        return {key: float(value) for key, value in values.items() if value is not None}


@dataclass
class BenchResults:
    """A whole benchmark: its config, where it ran, and one :class:`ConfigResult` per configuration."""

    config: dict
    environment: dict
    weights: dict  # path, commit, random flag, preset
    configs: list[ConfigResult] = field(default_factory=list)
    schema: str = SCHEMA

    def rows(self) -> list[dict]:
        """One flat row per (configuration, batch size): the results table."""
        rows = []
        for config in self.configs:
            for batch in config.batches:
                rows.append({"runtime": config.runtime, "precision": config.precision, "device": config.device,
                             "batch": batch.batch, "status": batch.status,
                             **{k: round(v, 4) for k, v in batch.metrics().items()},
                             **({"parity_mask_iou": round(config.parity["mask_iou_mean"], 4)}
                                if config.parity else {})})
        return rows

    def to_json(self) -> dict:
        return asdict(self)

    def write(self, path: Path) -> Path:
        """Write the results as JSON to ``path``; return it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path

    @classmethod
    def from_json(cls, data: dict) -> BenchResults:
        """Rebuild results written by :meth:`write` (on this machine or another)."""
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not a sam3ops benchmark result (schema {data.get('schema')!r}, expected {SCHEMA})")
        configs = []
        for config in data["configs"]:
            batches = [BatchResult(**{**b, "latency": LatencyStats(**b["latency"]) if b.get("latency") else None})
                       for b in config["batches"]]
            configs.append(ConfigResult(**{**config, "batches": batches}))
        return cls(config=data["config"], environment=data["environment"], weights=data["weights"],
                   configs=configs, schema=data["schema"])

    @classmethod
    def read(cls, path: Path) -> BenchResults:
        """Load a results JSON file."""
        return cls.from_json(json.loads(Path(path).read_text()))


PLAN_SCHEMA = "sam3ops.bench.plan/1"


@dataclass
class PlanStep:
    """One step of a prepared benchmark plan: its results, or why it has none."""

    name: str
    status: str = "ok"  # ok | error | skipped | unavailable
    error: str | None = None
    seconds: float | None = None
    results: BenchResults | None = None
    extra: dict = field(default_factory=dict)  # what a step measures outside BenchResults (cold start, profile)


@dataclass
class PlanResults:
    """A whole plan run on one host (``benchmarks/gpu_plan.py``): every step in order, in one JSON file."""

    environment: dict
    steps: list[PlanStep] = field(default_factory=list)
    total_s: float | None = None
    schema: str = PLAN_SCHEMA

    def rows(self) -> list[dict]:
        """The results table of every step that has results, each row with its step's name."""
        return [{"step": step.name, **row} for step in self.steps if step.results for row in step.results.rows()]

    def write(self, path: Path) -> Path:
        """Write the plan's results as JSON to ``path`` (after every step: a timeout keeps what was done)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def from_json(cls, data: dict) -> PlanResults:
        if data.get("schema") != PLAN_SCHEMA:
            raise ValueError(f"not a sam3ops benchmark plan (schema {data.get('schema')!r}, expected {PLAN_SCHEMA})")
        steps = [PlanStep(**{**step, "results": BenchResults.from_json(step["results"]) if step.get("results")
                             else None}) for step in data["steps"]]
        return cls(environment=data["environment"], steps=steps, total_s=data.get("total_s"), schema=data["schema"])


def read_any(path: Path) -> BenchResults | PlanResults:
    """A results JSON written by :meth:`BenchResults.write` or :meth:`PlanResults.write`."""
    data = json.loads(Path(path).read_text())
    return PlanResults.from_json(data) if data.get("schema") == PLAN_SCHEMA else BenchResults.from_json(data)
