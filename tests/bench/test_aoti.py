"""The benchmark on AOTInductor packages: runtime ``aoti`` picked from the folder, precision fixed."""

import pytest

from sam3ops.bench.config import BenchConfig
from sam3ops.bench.runner import run_benchmark
from sam3ops.errors import UsageError


def test_benchmark_measures_the_packages_against_fp32_torch(tiny_aoti, tiny_weights):
    folder = tiny_aoti[0]
    results = run_benchmark(BenchConfig(weights=str(folder), batches=[2], iterations=2, warmup=1,
                                        image_size=256, prompts_per_image=2), reference_weights=tiny_weights)
    [config] = results.configs
    assert (config.runtime, config.precision, config.device) == ("aoti", "fp32", "cpu")
    # Measured against fp32 torch like every runtime: the packages compute what eager torch does.
    assert config.batches[0].latency.count == 2 and config.parity["mask_iou_mean"] >= 0.99
    with pytest.raises(UsageError, match="holds aoti fp32: its precision was fixed at conversion"):
        run_benchmark(BenchConfig(weights=str(folder), precisions=["bf16"]))
    with pytest.raises(UsageError, match="runtime onnx cannot run .* AOTInductor packages"):
        run_benchmark(BenchConfig(weights=str(folder), runtime="onnx"))
