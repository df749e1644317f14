"""Plotly charts of benchmark results, as one self-contained HTML page (plotly.js embedded: it
opens offline, in the MLflow UI's artifact viewer or from disk)."""

from __future__ import annotations

from sam3ops.bench import metrics
from sam3ops.bench.results import BenchResults

STAGE_COLUMNS = metrics.STAGES


def against_batch(results: BenchResults):
    """Latency (p50, with p90 and p99 above it), ms per image, throughput and memory against batch size,
    one line per configuration."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    gpu = any(row.get("vram_peak_mb") is not None for row in results.rows())
    memory = ("vram_peak_mb", "peak VRAM, torch (MB)") if gpu else ("host_rss_peak_mb", "peak host RSS (MB)")
    panels = [("latency_p50_ms", "latency per call, p50 (ms)"), ("ms_per_image", "ms per image"),
              ("throughput_img_s", "throughput (images/s)"), memory]
    figure = make_subplots(rows=2, cols=2, subplot_titles=[title for _, title in panels])
    for index, config in enumerate(results.configs):
        rows = [r for r in results.rows() if (r["runtime"], r["precision"]) == (config.runtime, config.precision)
                and r["status"] == "ok"]
        batches = [r["batch"] for r in rows]
        for panel, (metric, _) in enumerate(panels):
            error = None
            if metric == "latency_p50_ms":
                error = dict(type="data", symmetric=False, array=[r["latency_p99_ms"] - r[metric] for r in rows],
                             arrayminus=[0] * len(rows))
            figure.add_trace(go.Scatter(x=batches, y=[r.get(metric) for r in rows], mode="lines+markers",
                                        name=config.name, legendgroup=config.name, showlegend=panel == 0,
                                        error_y=error, marker_color=_color(index)),
                             row=panel // 2 + 1, col=panel % 2 + 1)
    figure.update_xaxes(title_text="batch size", type="log", tickvals=list(results.config["batches"]))
    figure.update_layout(height=720, title=f"sam3ops benchmark on {results.environment.get('gpu_name', 'cpu')} "
                                           "(error bars: p50 to p99)")
    return figure


def stage_split(results: BenchResults):
    """Where the time goes: each configuration's stages side by side, per batch size (ms per call)."""
    import plotly.graph_objects as go

    rows = [r for r in results.rows() if r["status"] == "ok"]
    x = [[f"batch {r['batch']}" for r in rows], [f"{r['runtime']}-{r['precision']}" for r in rows]]
    figure = go.Figure([go.Bar(name=stage.removesuffix("_ms").removeprefix("stage_"), x=x,
                               y=[r.get(stage, 0.0) for r in rows]) for stage in STAGE_COLUMNS])
    figure.update_layout(barmode="stack", height=480, yaxis_title="ms per call",
                         title="time per stage (precisions side by side)")
    return figure


def _color(index: int) -> str:
    import plotly.express as px

    palette = px.colors.qualitative.Plotly
    return palette[index % len(palette)]


def html_page(figures, title: str = "sam3ops benchmark") -> str:
    """One offline HTML page holding ``figures`` (plotly.js embedded once)."""
    parts = [figure.to_html(full_html=False, include_plotlyjs=index == 0) for index, figure in enumerate(figures)]
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
            + "".join(parts) + "</body></html>")


def results_page(results: BenchResults) -> str:
    """The benchmark's charts: against batch, and the stage split."""
    return html_page([against_batch(results), stage_split(results)])
