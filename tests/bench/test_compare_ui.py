"""The MLflow UI story: two benchmark runs compare side by side, checked in a real headless Chromium."""

from __future__ import annotations

import json
import shutil
import urllib.parse

import mlflow
import pytest

from tests.conftest import REPO_ROOT
from tests.support.cli import run_cli
from tests.support.servers import MlflowServer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = REPO_ROOT / "test-artifacts"  # screenshots kept for people (git-ignored; CI may upload it)


@pytest.mark.slow
def test_compare_view_shows_both_benchmark_runs_metrics(capsys, tiny_weights, tmp_path):
    if CHROMIUM is None:
        pytest.skip("needs Debian's chromium (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    for precision in ("fp32", "bf16"):
        code, _, err = run_cli(capsys, "bench", "--weights", str(tiny_weights), "--precision", precision,
                               "--batch", "1,2", "--iterations", "2", "--warmup", "1", "--image-size", "256")
        assert code == 0, err
    experiment = mlflow.get_experiment_by_name("sam3-benchmark")
    runs = mlflow.MlflowClient().search_runs([experiment.experiment_id])
    names = sorted(r.info.run_name for r in runs)
    assert names == ["torch-bf16", "torch-fp32"]
    server = MlflowServer(mlflow.get_tracking_uri(), tmp_path / "artifacts", workers=1,
                          log=tmp_path / "server.log").start()
    try:
        query = urllib.parse.urlencode({"runs": json.dumps([r.info.run_id for r in runs]),
                                        "experiments": json.dumps([experiment.experiment_id])})
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1600, "height": 1400})
            page.goto(f"{server.uri}/#/compare-runs?{query}")
            # The compare page lists params and metrics by name, one column per run.
            page.get_by_text("Comparing 2 Runs").first.wait_for(timeout=60_000)
            for text in ("latency_p50_ms", "ms_per_image", "parity_mask_iou", *names):
                page.get_by_text(text, exact=True).first.wait_for(timeout=60_000)
            body = page.inner_text("body")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "mlflow-compare-benchmark-runs.png"), full_page=True)
            browser.close()
    finally:
        server.stop()
    # Both runs' params side by side: the precision row shows fp32 and bf16.
    assert "fp32" in body and "bf16" in body
    # The last logged value of a metric (batch 2's ms per image) is on the page, for each run.
    for run in runs:
        value = run.data.metrics["ms_per_image"]
        assert any(f"{value:.{digits}f}" in body for digits in (0, 1, 2, 3)), value
