"""Torch options in the benchmark, and the prepared GPU plan: its JSON, its logging, its CPU dry run."""

from __future__ import annotations

import json
import subprocess
import sys

import mlflow
import pytest

from sam3ops.bench import runner
from sam3ops.bench.config import BenchConfig
from sam3ops.bench.results import PlanResults, PlanStep, read_any
from sam3ops.bench.runner import run_benchmark
from sam3ops.errors import UsageError
from tests.conftest import REPO_ROOT, subprocess_env
from tests.support.cli import run_cli

QUICK = dict(batches="1", iterations=1, warmup=0, image_size=128, prompts_per_image=2)


def test_options_are_validated_and_kept_as_what_changed():
    config = BenchConfig(weights="w", options={"batch_pairs": "true", "attention": "auto"})
    assert config.options == {"batch_pairs": True}
    assert config.torch_options("torch-compile").compile == "default"
    assert BenchConfig(weights="w", options={"compile": "max-autotune"}).torch_options("torch-compile").compile \
        == "max-autotune"
    with pytest.raises(UsageError, match="unknown torch option 'turbo'"):
        BenchConfig(weights="w", options={"turbo": True})


def test_an_option_is_measured_with_its_accuracy_and_the_reference_is_made_once(tiny_weights, monkeypatch):
    made = []
    real = runner.reference_results
    monkeypatch.setattr(runner, "reference_results", lambda *a: made.append(a) or real(*a))
    cache: dict = {}
    first = run_benchmark(BenchConfig(weights=str(tiny_weights), options={"batch_pairs": True}, **QUICK),
                          reference_cache=cache)
    second = run_benchmark(BenchConfig(weights=str(tiny_weights), options={"gpu_postprocess": True}, **QUICK),
                           reference_cache=cache)
    assert len(made) == 1  # the same photos, size and prompts: one fp32 reference for both
    for results, name in ((first, "torch-fp32[batch_pairs]"), (second, "torch-fp32[gpu_postprocess]")):
        (config,) = results.configs
        assert config.name == name and config.parity["mask_iou_mean"] > 0.99  # fp32 + an exact option
        assert set(config.attention.values()) == {"sdpa"}


def _plan(tiny_weights) -> PlanResults:
    results = run_benchmark(BenchConfig(weights=str(tiny_weights), precisions="fp32,bf16", **QUICK))
    return PlanResults(environment={"host": "h200-box", "gpu_name": "NVIDIA H200"}, total_s=12.0, steps=[
        PlanStep(name="sweep", results=results, seconds=5.0),
        PlanStep(name="cold_start", extra={"first_call_s": 1.5}),
        PlanStep(name="format_aoti", status="unavailable", error="ImportError: no module sam3ops.convert.aoti"),
    ])


def test_plan_json_round_trips(tiny_weights, tmp_path):
    plan = _plan(tiny_weights)
    back = read_any(plan.write(tmp_path / "plan.json"))
    assert isinstance(back, PlanResults) and [s.name for s in back.steps] == ["sweep", "cold_start", "format_aoti"]
    assert back.steps[0].results.configs[1].name == "torch-bf16" and back.steps[1].extra == {"first_call_s": 1.5}
    assert [row["step"] for row in back.rows()] == ["sweep", "sweep"]


def test_a_plan_is_logged_a_run_per_step(capsys, tiny_weights, tmp_path):
    _plan(tiny_weights).write(tmp_path / "plan.json")
    code, out, err = run_cli(capsys, "bench", "--from-json", str(tmp_path / "plan.json"))
    assert code == 0, err
    experiment = mlflow.get_experiment_by_name("sam3-benchmark")
    runs = mlflow.MlflowClient().search_runs([experiment.experiment_id])
    parent = next(r for r in runs if r.data.tags.get("plan_steps"))
    assert parent.info.status == "FINISHED" and parent.data.tags["plan_steps_failed"] == "format_aoti"
    assert parent.data.tags["measured_on"] == "h200-box"
    step = next(r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id)
    assert step.data.params["plan_step"] == "sweep" and step.info.run_name == "sweep"
    configs = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == step.info.run_id]
    assert sorted(r.info.run_name for r in configs) == ["torch-bf16", "torch-fp32"]
    bf16 = next(r for r in configs if r.info.run_name == "torch-bf16")
    assert "latency_p50_ms" in bf16.data.metrics and "parity_mask_iou" in bf16.data.metrics
    saved = mlflow.artifacts.load_dict(f"runs:/{parent.info.run_id}/benchmark_plan.json")
    assert saved["steps"][2]["error"].startswith("ImportError")


@pytest.mark.slow
def test_the_plan_dry_runs_on_the_cpu_without_mlflow(tmp_path):
    bundle, out = tmp_path / "bundle", tmp_path / "out"
    env = subprocess_env(PYTHONPATH=f"{tmp_path / 'no-mlflow'}:{REPO_ROOT}")
    (tmp_path / "no-mlflow").mkdir()
    (tmp_path / "no-mlflow" / "mlflow.py").write_text('raise ImportError("no mlflow on the GPU host")\n')
    subprocess.run([sys.executable, "-m", "benchmarks.gpu_bundle", "--out", str(bundle), "--preset", "tiny",
                    "--no-wheels"], check=True, cwd=REPO_ROOT, env=env, timeout=300)
    summary = json.loads((bundle / "BUNDLE.json").read_text())
    assert {"preset/config.json", "preset/tokenizer.json", "photos/astronaut.png"} <= set(summary["files"])
    assert summary["total_bytes"] < summary["limit_bytes"]
    steps = "base_p1,batch_pairs,gpu_postprocess,format_aoti,cold_start,profile"
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu_plan", "--bundle", str(bundle), "--out", str(out),
                           "--work", str(tmp_path / "work"), "--device", "cpu", "--image-size", "128", "--dry",
                           "--only", steps], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "mlflow imported: False" in done.stdout
    plan = read_any(out / "plan.json")
    status = {s.name: s.status for s in plan.steps}
    assert status["base_p1"] == status["batch_pairs"] == status["gpu_postprocess"] == "ok"
    assert status["cold_start"] == status["profile"] == "ok"
    assert status["format_aoti"] == "ok", [s.error for s in plan.steps if s.name == "format_aoti"]
    by_name = {s.name: s for s in plan.steps}
    assert by_name["batch_pairs"].results.configs[0].parity["mask_iou_mean"] > 0.99
    assert by_name["cold_start"].extra["first_call_s"] > 0 and (out / "profile.txt").read_text().strip()
    assert by_name["profile"].extra["step"] in ("base_p1", "batch_pairs", "gpu_postprocess")
