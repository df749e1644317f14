"""What the main job did: one row per stage (made or reused), the outcome, and where to look at it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sam3ops.bench.metrics import ACCURACY, THROUGHPUT

# The columns the UI link opens the benchmark runs with: what tells the formats apart at a glance.
VIEW_PARAMS = ("runtime", "precision", "device")
VIEW_METRICS = (*THROUGHPUT, "latency_p50_ms", "vram_peak_mb", *ACCURACY)
BENCHMARK_RUNS = "tags.`sam3ops.stage` = 'benchmark'"


def benchmarks_link(experiment_id: str, *, uri: str | None = None) -> str:
    """The UI link of an experiment's benchmark runs: their metrics side by side, fastest first.

    Works for the benchmark experiment and for the pipeline's (whose benchmark runs are children of
    its runs: sorted by a metric, they get rows of their own).
    """
    from sam3ops.tracking.ui import runs_link

    return runs_link(experiment_id, metrics=VIEW_METRICS, params=VIEW_PARAMS, search=BENCHMARK_RUNS,
                     order_by="ms_per_image", uri=uri)


def ui_line(experiment: str = "sam3-pipeline", *, mlflow: str = "mlflow") -> str:
    """Where to look at an experiment's benchmark runs (``make demo``'s last line).

    The :func:`benchmarks_link`, and the ``mlflow ui`` command (naming executable ``mlflow``) that
    serves it when no tracking server does; the experiments list if ``experiment`` does not exist.
    """
    import mlflow as mlflow_lib

    from sam3ops.tracking.store import configure
    from sam3ops.tracking.ui import WORKFLOW, ui_base, with_command

    configure()
    found = mlflow_lib.MlflowClient().get_experiment_by_name(experiment)
    link = (benchmarks_link(found.experiment_id) if found
            else f"{ui_base()}/#/experiments?{'&'.join(f'{k}={v}' for k, v in WORKFLOW.items())}")
    return f"Benchmark runs of {experiment}: {with_command(link, mlflow=mlflow)}"


@dataclass
class StageRow:
    """One line of the summary: a stage, what it made, and whether it was reused."""

    stage: str
    artifact: str
    run_id: str
    reused: bool = False
    parity: str = ""
    ms_per_image: float | None = None
    throughput_img_s: float | None = None
    version: str = ""
    note: str = ""


@dataclass
class PipelineSummary:
    """The main job's outcome: the weights used, the prediction, every stage, the promoted version."""

    weights: Path
    weights_random: bool
    images_ok: int
    instances: int
    predictions: Path
    rows: list[StageRow] = field(default_factory=list)
    production: str | None = None  # the version the alias now points at

    @property
    def stages_reused(self) -> int:
        """How many stages reused an earlier run instead of running again."""
        return sum(row.reused for row in self.rows)

    def table(self) -> str:
        """The rows as aligned text."""
        head = ("stage", "artifact", "run", "reused", "parity", "ms/image", "images/s", "version")
        lines = [head] + [(r.stage, r.artifact, r.run_id[:12], "yes" if r.reused else "", r.parity,
                           "" if r.ms_per_image is None else f"{r.ms_per_image:.1f}",
                           "" if r.throughput_img_s is None else f"{r.throughput_img_s:.1f}",
                           r.version + (f" ({r.note})" if r.note else "")) for r in self.rows]
        widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
        return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(line, widths)).rstrip() for line in lines)
