"""The benchmark stage: the harness against known costs, the tiny sweep, MLflow logging, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import mlflow
import numpy as np
import pytest
import torch

from sam3ops.bench import metrics
from sam3ops.bench.config import BenchConfig, parse_batches
from sam3ops.bench.results import BenchResults
from sam3ops.bench.runner import run_benchmark
from sam3ops.bench.timers import LatencyStats, Timer, measure
from sam3ops.errors import UsageError
from tests.conftest import REPO_ROOT, subprocess_env
from tests.support.cli import run_cli

PER_BATCH = ["latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_mean_ms", "ms_per_image",
             "throughput_img_s", "host_rss_peak_mb", "stage_vision_ms", "stage_text_ms", "stage_decoder_ms",
             "preprocess_ms", "postprocess_ms"]
QUICK = ["--iterations", "2", "--warmup", "1", "--image-size", "256", "--prompts-per-image", "2"]


# --- the harness ----------------------------------------------------------------------------------

def test_percentiles_of_a_known_sequence():
    stats = LatencyStats.from_seconds([i / 1000 for i in range(1, 101)])  # 1 .. 100 ms
    assert stats.count == 100 and stats.min_ms == pytest.approx(1) and stats.max_ms == pytest.approx(100)
    assert stats.p50_ms == pytest.approx(50.5) and stats.p90_ms == pytest.approx(90.1)
    assert stats.p99_ms == pytest.approx(99.01) and stats.mean_ms == pytest.approx(50.5)
    assert stats.std_ms == pytest.approx(np.std(np.arange(1, 101), ddof=1))


def test_measure_excludes_warmup_and_honours_count_and_duration():
    now = [0.0]
    costs = {0: 5.0, 1: 0.5}  # the first warm-up call is slow (compilation), then 10 ms per call

    def call(i):
        now[0] += costs.get(i, 0.010)

    timer = Timer("cpu", clock=lambda: now[0])
    seen = measure(call, timer=timer, warmup=2, iterations=3, min_duration_s=0.0)
    assert seen.first_call_s == pytest.approx(5.0) and seen.warmup_s[1] == pytest.approx(0.5)
    assert seen.seconds == pytest.approx([0.010] * 3)
    costs.clear()  # every call 10 ms: 3 calls are not 0.1 s, so it goes on to 10
    longer = measure(call, timer=timer, warmup=0, iterations=3, min_duration_s=0.1)
    assert len(longer.seconds) in (10, 11) and sum(longer.seconds) >= 0.1 - 1e-9


def test_measured_latency_of_a_known_cost_is_right():
    seen = measure(lambda i: time.sleep(0.02), timer=Timer("cpu"), warmup=1, iterations=10)
    assert 19.9 <= seen.stats.p50_ms <= 35.0  # sleep never returns early; a loaded CI box adds some
    assert seen.stats.min_ms >= 19.9


@pytest.mark.parametrize("text,message", [("0", "batch 0 is out of range"), ("-1", "batch -1 is out of range"),
                                          ("abc", "'abc' is not a whole number"), ("4,x", "'x' is not"),
                                          ("", "'' is not a whole number")])
def test_bad_batches_are_refused(text, message):
    with pytest.raises(UsageError, match=message):
        parse_batches(text)


def test_batches_parse_and_deduplicate():
    assert parse_batches("1, 4,8,8") == (1, 4, 8) and parse_batches(16) == (16,)


@pytest.mark.parametrize("kwargs,message", [
    ({"runtime": "tflite"}, "unknown runtime 'tflite'"), ({"precisions": "fp8"}, "unknown precision 'fp8'"),
    ({"image_size": 0}, "image-size must be"), ({"prompts_per_image": 0}, "prompts-per-image must be"),
    ({"iterations": 0}, "iterations must be"), ({"device": "tpu"}, "unsupported device 'tpu'"),
    ({"runtime": "tensorrt"}, "runs on an NVIDIA GPU only"),
])
def test_bad_config_is_refused(kwargs, message):
    with pytest.raises(UsageError, match=message):
        BenchConfig(weights="w", **kwargs)


# --- the core on the tiny preset ------------------------------------------------------------------

@pytest.mark.slow
def test_core_runs_without_mlflow_and_writes_json(tiny_weights, tmp_path):
    script = (
        "import sys; sys.modules['mlflow'] = None\n"  # any `import mlflow` now fails
        "from sam3ops.bench.config import BenchConfig\nfrom sam3ops.bench.runner import run_benchmark\n"
        f"r = run_benchmark(BenchConfig(weights={str(tiny_weights)!r}, batches='1,2', iterations=2, warmup=1,"
        " image_size=256, prompts_per_image=2))\n"
        f"r.write({str(tmp_path / 'r.json')!r})\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env=subprocess_env())
    assert done.returncode == 0, done.stderr[-2000:]
    results = BenchResults.read(tmp_path / "r.json")
    assert [b.batch for b in results.configs[0].batches] == [1, 2]
    assert results.weights["random"] is True and results.environment["gpu_name"] == "cpu"


def test_sweep_splits_time_and_reports_accuracy_against_fp32(tiny_weights):
    config = BenchConfig(weights=str(tiny_weights), precisions="fp32,bf16", batches="1,3", iterations=3, warmup=1,
                         image_size=256, prompts_per_image=3)
    before_mb = rss_mb()
    results = run_benchmark(config)
    fp32, bf16 = results.configs
    assert (fp32.name, bf16.name) == ("torch-fp32", "torch-bf16")
    assert fp32.parity is None  # the reference itself
    assert 0.9 <= bf16.parity["mask_iou_mean"] <= 1.0 and bf16.parity["nonfinite"] == 0
    for batch in fp32.batches + bf16.batches:
        assert batch.status == "ok" and batch.latency.count == 3
        stages = batch.stages_ms
        assert set(stages) == {"preprocess", "vision", "text", "decoder", "postprocess"}
        assert sum(stages.values()) <= batch.latency.mean_ms * 1.05  # the parts fit in the whole
        assert batch.ms_per_image == pytest.approx(batch.latency.mean_ms / batch.batch)
        # The measured calls' peak: at least what this process held before the benchmark (the model comes
        # on top of it), and of the tiny model's size, not a unit slip. (Not "at most the lifetime peak":
        # each batch's reset of the kernel's high-water mark also lowers ru_maxrss, since the torch
        # threads that would carry the old peak in it never exit.)
        assert before_mb * 0.95 <= batch.host_rss_peak_mb <= before_mb + 2048


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def lifetime_peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def test_host_peak_sees_an_allocation_inside_and_resets_on_entry():
    from sam3ops.bench.memory import HostPeak

    with HostPeak() as big:
        block = bytearray(300 * 2**20)
        block[::4096] = b"\x01" * len(block[::4096])  # touch every page: resident, not just reserved
        del block
    assert big.reset, "the peak could not be reset on this kernel"
    with HostPeak() as small:
        pass
    assert big.peak_mb - small.peak_mb > 250, (big.peak_mb, small.peak_mb)
    assert rss_mb() * 0.9 <= small.peak_mb <= lifetime_peak_mb() + 1


@pytest.mark.parametrize("error", [
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:121] DefaultCPUAllocator: can't allocate memory: you tried to "
                 "allocate 68719476736 bytes. Error code 12 (Cannot allocate memory)"),  # torch's CPU allocator
])
def test_out_of_memory_at_one_batch_is_recorded_and_the_sweep_goes_on(tiny_weights, monkeypatch, error):
    from sam3ops.inference import Segmenter

    real = Segmenter.segment

    def segment(self, images, prompts, **kwargs):
        if len(images) == 4:
            raise error
        return real(self, images, prompts, **kwargs)

    monkeypatch.setattr(Segmenter, "segment", segment)
    results = run_benchmark(BenchConfig(weights=str(tiny_weights), batches="1,4,2", iterations=1, warmup=0,
                                        image_size=256, prompts_per_image=1))
    statuses = [(b.batch, b.status) for b in results.configs[0].batches]
    assert statuses == [(1, "ok"), (4, "oom"), (2, "ok")]
    assert str(error).split()[0] in results.configs[0].batches[1].error


def test_half_weights_are_compared_with_their_fp32_source_never_with_themselves(tiny_weights, tmp_path, caplog):
    from sam3ops.convert.cast import cast_weights

    half = cast_weights(source=tiny_weights, output=tmp_path / "fp16", precision="fp16").output
    quick = dict(batches="1", iterations=1, warmup=0, image_size=256, prompts_per_image=2, precisions="fp16")
    alone = run_benchmark(BenchConfig(weights=str(half), **quick))
    assert alone.configs[0].parity is None and "no fp32 reference" in caplog.text
    against_source = run_benchmark(BenchConfig(weights=str(half), **quick), reference_weights=tiny_weights)
    assert 0.9 <= against_source.configs[0].parity["mask_iou_mean"] <= 1.0


def test_runtime_that_cannot_run_the_weights_is_refused(tiny_weights):
    with pytest.raises(UsageError, match="runtime onnx cannot run .* safetensors weights"):
        run_benchmark(BenchConfig(weights=str(tiny_weights), runtime="onnx"))


# --- MLflow ---------------------------------------------------------------------------------------

def _runs(experiment="sam3-benchmark"):
    found = mlflow.get_experiment_by_name(experiment)
    return mlflow.MlflowClient().search_runs([found.experiment_id]) if found else []


@pytest.mark.slow
def test_sweep_run_logs_children_with_metric_steps_table_and_charts(capsys, tiny_weights):
    code, out, err = run_cli(capsys, "bench", "--weights", str(tiny_weights), "--precision", "fp32,bf16",
                             "--batch", "1,2", *QUICK)
    assert code == 0, err
    assert "torch" in out and "bf16" in out
    runs = _runs()
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.info.run_name for r in children) == ["torch-bf16", "torch-fp32"]
    client = mlflow.MlflowClient()
    for child in children:
        params = child.data.params
        assert set(metrics.PARAMS) <= set(params)  # the params contract, every configuration
        assert params["gpu_name"] == "cpu" and params["weights_random"] == "true" and params["batch"] == "1,2"
        for name in PER_BATCH:
            assert [m.step for m in client.get_metric_history(child.info.run_id, name)] == [1, 2], name
    bf16 = next(c for c in children if c.info.run_name == "torch-bf16")
    assert 0.9 <= bf16.data.metrics["parity_mask_iou"] <= 1.0
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"benchmark.json", "benchmark_table.json", "benchmark_charts.html"} <= artifacts
    local = mlflow.artifacts.download_artifacts(run_id=parent.info.run_id)
    table = json.loads(open(f"{local}/benchmark_table.json").read())
    assert len(table["data"]) == 4 and "latency_p50_ms" in table["columns"]
    page = open(f"{local}/benchmark_charts.html").read()
    # plotly.js inside the page, not from a CDN
    assert "<script src=\"https://cdn" not in page and "Plotly.newPlot" in page and len(page) > 1_000_000
    assert all(r.info.status == "FINISHED" for r in runs)


@pytest.mark.slow
def test_tiny_default_sweep_runs_and_two_runs_compare(capsys, tiny_weights, tmp_path):
    for precision in ("fp32", "bf16"):
        code, _, err = run_cli(capsys, "bench", "--weights", str(tiny_weights), "--precision", precision,
                               "--iterations", "2", "--warmup", "1")
        assert code == 0, err
    runs = _runs()
    assert len(runs) == 2 and {r.data.params["precision"] for r in runs} == {"fp32", "bf16"}
    by = {r.data.params["precision"]: set(r.data.metrics) for r in runs}
    # The same names in both; only bf16 has an accuracy figure (fp32 torch is the reference itself).
    assert by["fp32"] == by["bf16"] - {"parity_mask_iou", "parity_mask_iou_min", "parity_score_max_diff"}
    assert "parity_mask_iou" in by["bf16"] and "latency_p50_ms" in by["fp32"]
    code, out, err = run_cli(capsys, "compare", "--output", str(tmp_path / "cmp.html"))
    assert code == 0, err
    rows = [line.split() for line in out.splitlines()[1:] if line.split()[:1] in (["torch-fp32"], ["torch-bf16"])]
    assert len(rows) == 8  # 2 runs x the default sweep 1, 4, 8, 16
    assert sorted(int(r[4]) for r in rows) == [1, 1, 4, 4, 8, 8, 16, 16]
    assert "Plotly.newPlot" in (tmp_path / "cmp.html").read_text()


def test_results_measured_elsewhere_are_logged_the_same_way(capsys, tiny_weights, tmp_path):
    results = run_benchmark(BenchConfig(weights=str(tiny_weights), batches="2", iterations=1, warmup=0,
                                        image_size=256, prompts_per_image=1))
    results.environment["host"] = "gpu-box"
    results.write(tmp_path / "measured.json")
    code, _, err = run_cli(capsys, "bench", "--from-json", str(tmp_path / "measured.json"))
    assert code == 0, err
    (run,) = _runs()
    assert run.data.tags["measured_on"] == "gpu-box" and run.data.params["batch"] == "2"
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "latency_p50_ms")
    assert [m.step for m in history] == [2]
    assert history[0].value == pytest.approx(results.configs[0].batches[0].latency.p50_ms)


@pytest.mark.parametrize("args,message", [
    (["--batch", "0"], "batch 0 is out of range"),
    (["--batch", "-1"], "batch -1 is out of range"),
    (["--batch", "abc"], "batch 'abc' is not a whole number"),
    (["--runtime", "tflite"], "unknown runtime 'tflite'"),
    (["--runtime", "tensorrt"], "the tensorrt runtime runs on an NVIDIA GPU only"),
    (["--device", "cuda"], "CUDA is not available here"),
    (["--precision", "fp8"], "unknown precision 'fp8'"),
    (["--iterations", "many"], "--iterations 'many' is not a whole number"),
])
def test_bad_parameters_give_one_line_and_a_failed_run(capsys, tiny_weights, args, message):
    if torch.cuda.is_available() and "cuda" in args:
        pytest.skip("this machine has CUDA")
    code, out, err = run_cli(capsys, "bench", "--weights", str(tiny_weights), *args)
    assert code != 0
    lines = [line for line in err.splitlines() if line.startswith("sam3ops: error:")]
    assert len(lines) == 1 and message in lines[0], err
    runs = _runs()
    if runs:  # a value click itself rejects never opens a run
        assert [r.info.status for r in runs] == ["FAILED"] and message in runs[0].data.tags["error"]
    else:
        assert args[0] == "--iterations"


def test_missing_weights_say_to_download_or_init_never_fall_back(capsys):
    code, _, err = run_cli(capsys, "bench")  # default weights/sam3: absent here
    assert code != 0
    assert "weights folder weights/sam3 not found" in err and "sam3ops download" in err and "init" in err
    (run,) = _runs()
    assert run.info.status == "FAILED"


def test_unreadable_results_json_is_refused(capsys, tmp_path):
    (tmp_path / "bad.json").write_text('{"schema": "other"}')
    code, _, err = run_cli(capsys, "bench", "--from-json", str(tmp_path / "bad.json"))
    assert code != 0 and "is not a sam3ops benchmark result" in err
    assert [r.info.status for r in _runs()] == ["FAILED"]


def test_compare_without_runs_says_to_benchmark_first(capsys):
    code, _, err = run_cli(capsys, "compare")
    assert code != 0 and "run `sam3ops bench` first" in err


@pytest.mark.slow
def test_mlflow_run_benchmark_entry_point(tmp_path, tiny_weights):
    done = subprocess.run(
        ["mlflow", "run", str(REPO_ROOT), "-e", "benchmark", "--env-manager", "local", "--experiment-name",
         "sam3-benchmark", "-P", "batch=8", "-P", f"weights={tiny_weights}", "-P", "iterations=2",
         "-P", "warmup=1", "-P", "image_size=256"],
        env=subprocess_env(), capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = _runs()
    assert run.info.status == "FINISHED" and run.data.tags["mlflow.project.entryPoint"] == "benchmark"
    assert run.data.params["batch"] == "8" and run.data.tags["runtime"] == "torch"
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "ms_per_image")
    assert [m.step for m in history] == [8]


def test_nvml_sampling_keeps_each_counter_and_falls_back_to_device_memory(monkeypatch):
    """The GPU probe's NVML side, against a fake pynvml (no GPU here): in a container NVML lists host
    PIDs, and a counter the GPU lacks must not cost the others."""
    import types

    from sam3ops.bench import memory

    def unsupported(handle):
        raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")

    fake = types.SimpleNamespace(
        nvmlDeviceGetComputeRunningProcesses=lambda h: [types.SimpleNamespace(pid=1, usedGpuMemory=5 * 2**20)],
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(used=300 * 2**20),
        nvmlDeviceGetUtilizationRates=unsupported,
        nvmlDeviceGetPowerUsage=lambda h: 150_000,  # mW
        nvmlDeviceGetTotalEnergyConsumption=lambda h: next(energy_mj),
    )
    energy_mj = iter([1_000_000, 1_000_500])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    with memory.NvmlSampler("handle", interval_s=0.005) as sampler:
        time.sleep(0.05)
    reading = sampler.fold_into(memory.GpuReading())
    assert reading.nvml_process_peak_mb == pytest.approx(300) and reading.extra["nvml_memory_source"] == "device"
    assert reading.power_mean_w == pytest.approx(150) and reading.utilization_mean_pct is None
    assert reading.energy_j == pytest.approx(0.5)  # 500 mJ between the two counter reads


# --- system metrics (MLflow's own sampler) ---------------------------------------------------------

def _system_metrics(run) -> set[str]:
    return {key for key in run.data.metrics if key.startswith("system/")}


@pytest.mark.slow
def test_system_metrics_are_logged_on_the_parent_only_when_asked_for(capsys, tiny_weights, monkeypatch):
    import os

    # Off: none, even where MLflow's own switch asks every run for them (they would disturb the timings).
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "true")
    monkeypatch.delenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", raising=False)
    code, _, err = run_cli(capsys, "bench", "--weights", str(tiny_weights), "--batch", "1", *QUICK)
    assert code == 0, err
    (off,) = _runs()
    assert _system_metrics(off) == set() and off.data.params["system_metrics"] == "false"
    # On, for a sweep: MLflow's names on the parent, sampled every second (MLflow's 10 s would log
    # nothing for a run this short); the children share the parent's sampler.
    code, _, err = run_cli(capsys, "bench", "--weights", str(tiny_weights), "--precision", "fp32,bf16",
                           "--batch", "1", "--system-metrics", *QUICK)
    assert code == 0, err
    runs = [r for r in _runs() if r.info.run_id != off.info.run_id]
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 2 and all(_system_metrics(c) == set() for c in children)
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes",
            "system/system_memory_usage_percentage"} <= _system_metrics(parent)
    assert parent.data.params["system_metrics"] == "true" and parent.info.status == "FINISHED"
    assert all(c.data.params["system_metrics"] == "true" for c in children)
    history = mlflow.MlflowClient().get_metric_history(parent.info.run_id, "system/cpu_utilization_percentage")
    assert history and all(0 <= m.value <= 100 * 64 for m in history)
    assert "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL" not in os.environ  # put back as it was


def test_system_metrics_sampling_interval_is_ours_unless_one_is_set(monkeypatch):
    import os

    from sam3ops.bench.config import SYSTEM_METRICS_INTERVAL_S
    from sam3ops.bench.stage import _sampling_interval

    name = "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"
    monkeypatch.delenv(name, raising=False)
    with _sampling_interval(True):
        assert float(os.environ[name]) == SYSTEM_METRICS_INTERVAL_S
    assert name not in os.environ
    with _sampling_interval(False):
        assert name not in os.environ
    monkeypatch.setenv(name, "5")
    with _sampling_interval(True):
        assert os.environ[name] == "5"
    assert os.environ[name] == "5"


def test_system_metrics_must_be_a_bool():
    with pytest.raises(UsageError, match="system-metrics must be true or false"):
        BenchConfig(weights="w", system_metrics="yes")
    assert BenchConfig(weights="w").system_metrics is False
