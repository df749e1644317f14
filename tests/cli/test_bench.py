"""`sam3ops bench` and `compare`: what they pass on, numbers checked before the library runs."""

from types import SimpleNamespace

from sam3ops.bench.config import BenchConfig
from tests.cli.helpers import finished, invoke
from tests.support.cli import run_cli

ROWS = [{"runtime": "torch", "precision": "fp32", "batch": 1, "status": "ok", "latency_p50_ms": 12.345,
         "ms_per_image": 12.345, "hidden_column": 1}]


def _results():
    return SimpleNamespace(rows=lambda: ROWS)


def test_bench_passes_config_fields_with_the_library_defaults(replace):
    stage = replace("sam3ops.bench.stage.bench_stage", finished("benchmark", _results()))
    out = invoke("bench", "--weights", "w", "--precision", "fp32,bf16", "--iterations", "3").output
    given = stage.kwargs
    assert given == {"weights": "w", "reference": None, "output_json": None, "runtime": "auto",
                     "precisions": "fp32,bf16", "batches": "1,4,8,16", "image_size": 1008, "prompts_per_image": 4,
                     "warmup": 2, "iterations": 3, "min_duration_s": 0.0, "device": "cpu", "parity": True,
                     "photos": None, "system_metrics": False}
    fields = {k: v for k, v in given.items() if k not in ("reference", "output_json")}
    assert BenchConfig(**fields).precisions == ("fp32", "bf16")  # every option is a BenchConfig field
    lines = out.strip().splitlines()
    assert lines[0].split() == ["runtime", "precision", "batch", "status", "latency_p50_ms", "ms_per_image"]
    assert lines[1].split() == ["torch", "fp32", "1", "ok", "12.35", "12.35"] and lines[-1] == "run run0123456789"


def test_system_metrics_is_off_unless_asked_for_alone_or_with_a_value(replace):
    stage = replace("sam3ops.bench.stage.bench_stage", finished("benchmark", _results()))
    for args, expected in (((), False), (("--system-metrics",), True), (("--system-metrics", "true"), True),
                           (("--system-metrics", "false"), False)):
        invoke("bench", "--weights", "w", *args)
        assert stage.calls.pop()["system_metrics"] is expected, args


def test_from_json_logs_results_measured_elsewhere_and_ignores_the_measuring_options(replace):
    stage = replace("sam3ops.bench.stage.bench_stage", finished("benchmark", _results()))
    invoke("bench", "--from-json", "measured.json", "--iterations", "3")
    assert stage.kwargs == {"from_json": "measured.json"}


def test_a_number_that_is_no_number_is_refused_before_the_stage(capsys, replace):
    stage = replace("sam3ops.bench.stage.bench_stage", finished("benchmark", _results()))
    code, _, err = run_cli(capsys, "bench", "--min-duration", "long")
    assert code == 2 and err.strip() == "sam3ops: error: --min-duration 'long' is not a number"
    assert stage.calls == []


def test_compare_prints_the_table_and_writes_the_charts(replace, monkeypatch, tmp_path):
    import pandas as pd

    load = replace("sam3ops.bench.compare.load_runs", pd.DataFrame(ROWS))
    monkeypatch.setattr("sam3ops.bench.compare.comparison_page", lambda frame: f"<html>{len(frame)} rows</html>")
    out = invoke("compare", "--run-id", "a", "--run-id", "b", "--output", str(tmp_path / "c.html")).output
    assert load.kwargs == {"experiment": "sam3-benchmark", "run_ids": ["a", "b"], "max_runs": 20}
    assert out.splitlines()[0].split() == ["runtime", "precision", "batch", "latency_p50_ms", "ms_per_image"]
    assert (tmp_path / "c.html").read_text() == "<html>1 rows</html>"
