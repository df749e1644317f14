"""``sam3ops bench`` and ``sam3ops compare``: measure runtimes and precisions, and read the runs back."""

from __future__ import annotations

from pathlib import Path

import click

from sam3ops.bench.compare import EXPERIMENT
from sam3ops.bench.config import DEFAULT_MAX_RUNS, BenchConfig
from sam3ops.cli.options import as_text, defaults_of, optional_bool
from sam3ops.errors import UsageError
from sam3ops.predict.config import DEFAULT_WEIGHTS

DEFAULTS = defaults_of(BenchConfig)
TABLE_COLUMNS = ("runtime", "precision", "batch", "status", "latency_p50_ms", "latency_p99_ms", "ms_per_image",
                 "throughput_img_s", "vram_peak_mb", "host_rss_peak_mb", "parity_mask_iou")
COMPARE_COLUMNS = ("run_name", "runtime", "precision", "device", "batch", "latency_p50_ms", "ms_per_image",
                   "throughput_img_s", "vram_peak_mb", "parity_mask_iou")


# The numeric options are text on purpose: MLproject passes strings, and the library's checks give
# the one-line errors (a value that is no number at all is refused here).
@click.command()
@click.option("--weights", default=DEFAULT_WEIGHTS, show_default=True,
              help="A weights folder, runs:/RUN/weights, or models:/sam3@production.")
@click.option("--runtime", default=DEFAULTS["runtime"], show_default=True,
              help="auto, torch, torch-compile, onnx, tensorrt or meta (Meta's own model from a sam3.pt; "
                   "auto: from what WEIGHTS holds).")
@click.option("--precision", default=as_text(DEFAULTS["precisions"]), show_default=True,
              help="fp32, fp16, bf16, or several: fp32,bf16 (torch; ONNX and engines fix theirs).")
@click.option("--batch", default=as_text(DEFAULTS["batches"]), show_default=True,
              help="Batch size, or a sweep: 1,4,8,16.")
@click.option("--image-size", default=as_text(DEFAULTS["image_size"]), show_default=True,
              help="Side of the square input photos.")
@click.option("--prompts-per-image", default=as_text(DEFAULTS["prompts_per_image"]), show_default=True,
              help="Distinct text prompts per image.")
@click.option("--warmup", default=as_text(DEFAULTS["warmup"]), show_default=True,
              help="Unmeasured calls per batch size.")
@click.option("--iterations", default=as_text(DEFAULTS["iterations"]), show_default=True,
              help="At least this many measured calls ...")
@click.option("--min-duration", default=as_text(DEFAULTS["min_duration_s"]), show_default=True,
              help="... and at least this many seconds.")
@click.option("--device", default=DEFAULTS["device"], show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--reference", default=None,
              help="fp32 safetensors (or a Meta sam3.pt folder: Meta's model) for the accuracy check  "
                   "[default: WEIGHTS]")
@click.option("--parity/--no-parity", default=DEFAULTS["parity"], show_default=True,
              help="Report mask IoU against fp32 torch on the same inputs.")
@click.option("--photos", default=None, help="A folder of photos to use  [default: scikit-image's sample photos]")
@optional_bool("--system-metrics", "Also log MLflow's system metrics (CPU, memory, GPU) every second; the sampler "
               "shares the CPU with what is measured.")
@click.option("--output-json", default=None, help="Also write the results here as JSON.")
@click.option("--from-json", "from_json", default=None,
              help="Log results measured elsewhere (a JSON from --output-json) instead of measuring.")
def bench(weights, runtime, precision, batch, image_size, prompts_per_image, warmup, iterations, min_duration,
          device, reference, parity, photos, system_metrics, output_json, from_json) -> None:
    """Benchmark latency, throughput, memory and accuracy per runtime, precision and batch size.

    Warm-up excluded; CUDA events on a GPU, perf_counter on the CPU; real photos rotated; each
    call encodes its prompts. Metrics are logged with step = batch size (experiment sam3-benchmark).
    """
    if from_json:  # the measuring options do not apply to results measured elsewhere
        options = {"from_json": from_json}
    else:  # numbers checked before the library is imported: a typo costs no torch import
        options = {"weights": weights, "reference": reference, "output_json": output_json, "runtime": runtime,
                   "precisions": precision, "batches": batch, "image_size": _whole(image_size, "--image-size"),
                   "prompts_per_image": _whole(prompts_per_image, "--prompts-per-image"),
                   "warmup": _whole(warmup, "--warmup"), "iterations": _whole(iterations, "--iterations"),
                   "min_duration_s": _number(min_duration, "--min-duration"), "device": device, "parity": parity,
                   "photos": photos, "system_metrics": system_metrics}
    from sam3ops.bench.stage import bench_stage

    result = bench_stage(**options)
    click.echo(_table(result.outputs.rows(), TABLE_COLUMNS))
    click.echo(f"run {result.run_id}")


def _whole(text: str, option: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a whole number") from None


def _number(text: str, option: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a number") from None


def _table(rows, columns: tuple[str, ...]) -> str:
    import pandas as pd

    frame = pd.DataFrame(rows)
    return frame[[c for c in columns if c in frame]].to_string(index=False, float_format=lambda v: f"{v:.2f}")


@click.command()
@click.option("--experiment", default=EXPERIMENT, show_default=True, help="Experiment to read.")
@click.option("--run-id", "run_ids", multiple=True, help="Compare these runs (repeatable)  [default: the newest]")
@click.option("--max-runs", default=DEFAULT_MAX_RUNS, show_default=True, type=int,
              help="How many of the newest runs to read.")
@click.option("--output", default="benchmark_comparison.html", show_default=True,
              help="Where to write the comparison charts (offline HTML).")
def compare(experiment, run_ids, max_runs, output) -> None:
    """Compare benchmark runs from the tracking server: a table, and charts against batch size."""
    from sam3ops.bench.compare import comparison_page, load_runs

    frame = load_runs(experiment=experiment, run_ids=list(run_ids), max_runs=max_runs)
    click.echo(_table(frame, COMPARE_COLUMNS))
    Path(output).write_text(comparison_page(frame), encoding="utf-8")
    click.echo(f"charts -> {output}")
    click.echo(f"ui     -> {_ui_line(experiment, run_ids)}")


def _ui_line(experiment: str, run_ids) -> str:
    """The UI link of the compared runs' experiment (the first given run's, else ``experiment``)."""
    import mlflow

    from sam3ops.pipeline.summary import benchmarks_link
    from sam3ops.tracking.ui import experiment_of_run, ui_base, with_command

    if run_ids:
        experiment_id = experiment_of_run(run_ids[0])
    else:
        found = mlflow.MlflowClient().get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else None
    return with_command(benchmarks_link(experiment_id) if experiment_id else ui_base())


COMMANDS = (bench, compare)
