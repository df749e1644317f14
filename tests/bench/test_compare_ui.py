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


def _ui_link(out: str) -> tuple[str, str]:
    """The link on `compare`'s `ui ->` line, and what follows it."""
    [line] = [line for line in out.splitlines() if line.startswith("ui     -> ")]
    link, _, rest = line.removeprefix("ui     -> ").partition("  ")
    return link, rest


@pytest.mark.slow
def test_the_link_compare_prints_opens_the_benchmark_runs_with_their_metric_columns(capsys, monkeypatch,
                                                                                    tiny_weights, tmp_path):
    if CHROMIUM is None:
        pytest.skip("needs Debian's chromium (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    # Two precisions in one run: two child runs under a parent, as the pipeline's benchmark runs are.
    code, _, err = run_cli(capsys, "bench", "--weights", str(tiny_weights), "--precision", "fp32,bf16",
                           "--batch", "1,2", "--iterations", "2", "--warmup", "1", "--image-size", "256")
    assert code == 0, err
    experiment = mlflow.get_experiment_by_name("sam3-benchmark")
    children = [r for r in mlflow.MlflowClient().search_runs([experiment.experiment_id])
                if "mlflow.parentRunId" in r.data.tags]
    assert sorted(r.info.run_name for r in children) == ["torch-bf16", "torch-fp32"]
    code, out, err = run_cli(capsys, "compare", "--output", str(tmp_path / "c.html"))
    assert code == 0, err
    embedded, started_with = _ui_link(out)
    assert embedded.startswith(f"http://127.0.0.1:5000/#/experiments/{experiment.experiment_id}/runs?"
                               "workflowType=machine_learning&viewStateShareKey=sam3ops-")
    assert started_with == f"(start the UI with: mlflow ui --backend-store-uri {mlflow.get_tracking_uri()})"

    server = MlflowServer(mlflow.get_tracking_uri(), tmp_path / "artifacts", workers=1,
                          log=tmp_path / "server.log").start()
    try:
        # Through the server, `compare` prints the server's own link: the same page on its address.
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
        code, out, err = run_cli(capsys, "compare", "--output", str(tmp_path / "c.html"))
        assert code == 0, err
        link, rest = _ui_link(out)
        assert link == embedded.replace("http://127.0.0.1:5000", server.uri) and rest == ""
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            # Wide enough for every column: the grid leaves out the columns that are scrolled out of view.
            page = browser.new_page(viewport={"width": 2600, "height": 1000})
            page.goto(link)
            grid = page.locator(".ag-root")  # the runs table, not the side panels
            for text in ("torch-fp32", "torch-bf16", "ms_per_image", "throughput_img_s", "latency_p50_ms",
                         "parity_mask_iou", "precision"):
                grid.get_by_text(text, exact=True).first.wait_for(timeout=60_000)
            body = grid.inner_text()
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "mlflow-benchmark-runs-table.png"), full_page=True)
            browser.close()
    finally:
        server.stop()
    for run in children:  # each child's last logged ms per image (batch 2) is in its row
        value = run.data.metrics["ms_per_image"]
        # The grid shows the number cut short with an ellipsis (34.5557...), or rounded where it fits.
        shown = {repr(value)[:n] for n in (5, 6)} | {f"{value:.{digits}f}" for digits in (1, 2, 3)}
        assert any(text in body for text in shown), (value, body[-500:])
