"""Benchmark runs back from the tracking server: a pandas table and plotly comparisons across runs.

Each run that holds metrics (a single-configuration benchmark, or one child of a sweep) becomes
one row per batch size, read from the metric history (step = batch size). Used by
``sam3ops compare`` and ``notebooks/benchmark.ipynb``.
"""

from __future__ import annotations

from sam3ops.bench import metrics
from sam3ops.bench.config import DEFAULT_MAX_RUNS
from sam3ops.errors import UsageError, safe_url, tracking_error
from sam3ops.tracking.store import experiment_name

EXPERIMENT = experiment_name("benchmark")
COLUMNS = ("run_name", "runtime", "precision", "device", "gpu_name", "batch", "latency_p50_ms", "latency_p99_ms",
           "ms_per_image", "throughput_img_s", "vram_peak_mb", "host_rss_peak_mb", "parity_mask_iou",
           "weights_random", "run_id")
PER_BATCH = metrics.PER_BATCH


def load_runs(*, experiment: str = EXPERIMENT, run_ids: list[str] | tuple[str, ...] = (),
              max_runs: int = DEFAULT_MAX_RUNS):
    """A DataFrame with one row per (benchmark run, batch size), newest runs first.

    Args:
        experiment: where to look (ignored when ``run_ids`` are given).
        run_ids: specific runs; a sweep's parent stands for its children.
        max_runs: how many of the newest finished runs to read.

    Raises:
        UsageError: no such experiment or run, or no benchmark metrics in them.
    """
    import mlflow
    import pandas as pd

    from sam3ops import tracking

    tracking.configure()
    client = mlflow.MlflowClient()
    if run_ids:
        runs = []
        for run_id in run_ids:
            try:
                run = client.get_run(run_id)
            except Exception as exc:
                if translated := tracking_error(exc):  # refused credentials or a server that is down
                    raise translated from None
                raise UsageError(f"run {run_id} not found on {safe_url(mlflow.get_tracking_uri())}",
                                 hint="copy the run id from `mlflow ui` or the bench output") from None
            children = client.search_runs([run.info.experiment_id],
                                          filter_string=f"tags.mlflow.parentRunId = '{run_id}'")
            runs.extend(children or [run])
    else:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            raise UsageError(f"no experiment {experiment!r} on {safe_url(mlflow.get_tracking_uri())}",
                             hint="run `sam3ops bench` first")
        runs = client.search_runs([found.experiment_id], filter_string="attributes.status = 'FINISHED'",
                                  order_by=["attributes.start_time DESC"], max_results=max_runs)
    rows = []
    for run in runs:
        if "latency_p50_ms" not in run.data.metrics:
            continue  # a sweep's parent (its children hold the numbers) or a failed run
        by_batch: dict[int, dict] = {}
        for key in PER_BATCH:
            if key in run.data.metrics:
                for point in client.get_metric_history(run.info.run_id, key):
                    by_batch.setdefault(point.step, {})[key] = point.value
        params, tags = run.data.params, run.data.tags
        for batch, values in sorted(by_batch.items()):
            rows.append({"run_name": run.info.run_name, "runtime": tags.get("runtime", params.get("runtime")),
                         "precision": tags.get("precision", params.get("precision")),
                         "device": params.get("device"), "gpu_name": params.get("gpu_name", tags.get("gpu_name")),
                         "batch": batch, **values, "parity_mask_iou": run.data.metrics.get("parity_mask_iou"),
                         "weights_random": params.get("weights_random"), "run_id": run.info.run_id})
    if not rows:
        raise UsageError("no benchmark metrics in those runs", hint="run `sam3ops bench` first")
    frame = pd.DataFrame(rows)
    return frame[[c for c in COLUMNS if c in frame] + [c for c in frame if c not in COLUMNS]]


def compare_figure(frame, *, metric: str = "ms_per_image"):
    """``metric`` against batch size, one line per run (label: run, runtime, precision)."""
    import plotly.express as px

    if metric not in frame:
        raise UsageError(f"metric {metric!r} is not in these runs", hint=f"choose from: {', '.join(PER_BATCH)}")
    data = frame.assign(config=frame["runtime"] + "-" + frame["precision"] + " (" + frame["run_id"].str[:8] + ")")
    figure = px.line(data.sort_values("batch"), x="batch", y=metric, color="config", markers=True, log_x=True,
                     title=f"{metric} against batch size", hover_data=["device", "gpu_name", "run_name"])
    figure.update_xaxes(tickvals=sorted(data["batch"].unique()))
    return figure


def comparison_page(frame, metrics=("ms_per_image", "throughput_img_s", "latency_p99_ms")) -> str:
    """An offline HTML page with one comparison chart per metric present."""
    from sam3ops.bench.charts import html_page

    return html_page([compare_figure(frame, metric=m) for m in metrics if m in frame], "sam3ops benchmark comparison")
