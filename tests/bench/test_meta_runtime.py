"""The benchmark on Meta's own model: `--runtime meta`, and Meta's model as the accuracy reference."""

from __future__ import annotations

import mlflow
import pytest

from sam3ops.bench.config import BenchConfig
from sam3ops.bench.describe import resolve_runtime
from sam3ops.bench.runner import run_benchmark
from sam3ops.errors import UsageError
from tests.support.cli import run_cli

QUICK = dict(batches="1", iterations=1, warmup=0, image_size=64, prompts_per_image=2)


def test_auto_picks_meta_for_a_meta_folder_and_meta_needs_one(tiny_meta, tiny_weights):
    assert resolve_runtime(tiny_meta, "auto") == resolve_runtime(tiny_meta, "meta") == "meta"
    with pytest.raises(UsageError, match="transformers layout") as caught:
        resolve_runtime(tiny_weights, "meta")
    assert "convert --input" in caught.value.one_line() and "--layout meta" in caught.value.one_line()
    with pytest.raises(UsageError, match="Meta's sam3.pt"):
        resolve_runtime(tiny_meta, "torch")


def test_meta_fp32_and_bf16_measured_and_bf16_checked_against_meta_fp32(tiny_meta):
    results = run_benchmark(BenchConfig(weights=str(tiny_meta), runtime="meta", precisions="fp32,bf16", **QUICK))
    fp32, bf16 = results.configs
    assert (fp32.name, bf16.name) == ("meta-fp32", "meta-bf16")
    assert fp32.parity is None  # the reference itself
    assert bf16.parity["nonfinite"] == 0 and 0.5 <= bf16.parity["mask_iou_mean"] <= 1.0
    for batch in fp32.batches + bf16.batches:
        assert batch.status == "ok" and batch.latency.count == 1
        assert set(batch.stages_ms) == {"preprocess", "vision", "text", "decoder", "postprocess"}
    assert results.weights["random"] is True and results.weights["preset"] == "tiny"


def test_torch_weights_checked_against_meta_reference(tiny_weights, tiny_meta):
    results = run_benchmark(BenchConfig(weights=str(tiny_weights), **QUICK), reference_weights=tiny_meta)
    (torch_fp32,) = results.configs
    # Other random weights than Meta's checkpoint: compared (not skipped as "the reference itself"),
    # and far from it. A converted Meta checkpoint is what passes this check.
    assert torch_fp32.parity is not None and torch_fp32.parity["instances"] > 0
    assert torch_fp32.parity["passed"] is False


def test_meta_runtime_on_a_transformers_folder_is_one_line_and_a_failed_run(capsys, tiny_weights):
    code, _, err = run_cli(capsys, "bench", "--weights", str(tiny_weights), "--runtime", "meta", "--batch", "1")
    assert code != 0
    lines = [line for line in err.splitlines() if line.startswith("sam3ops: error:")]
    assert len(lines) == 1 and "--layout meta" in lines[0], err
    (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert run.info.status == "FAILED" and "transformers layout" in run.data.tags["error"]
