"""The experiment's models view in the MLflow UI lists every format, named by format and precision,
with its latency and parity side by side; checked in a real headless Chromium."""

from __future__ import annotations

import shutil

import mlflow
import pytest

from sam3ops.registry.logged import MODELS_EXPERIMENT
from tests.conftest import REPO_ROOT
from tests.support.registry import point_at
from tests.support.servers import MlflowServer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = REPO_ROOT / "test-artifacts"  # screenshots kept for people (git-ignored; CI may upload it)


def _shown(value: float, body: str) -> bool:
    """The grid shows a number rounded or cut short (34.5557...): either form is on the page."""
    text = f"{value:.10f}"
    return any(f"{value:.{d}f}" in body or text[:len(f"{value:.{d}f}")] in body for d in (1, 2, 3, 4))


@pytest.mark.slow
def test_models_view_lists_every_format_with_latency_and_parity(formats, monkeypatch, tmp_path):
    if CHROMIUM is None:
        pytest.skip("needs Debian's chromium (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    point_at(monkeypatch, formats.uri)
    experiment = mlflow.get_experiment_by_name(MODELS_EXPERIMENT)
    models = mlflow.search_logged_models(experiment_ids=[experiment.experiment_id], output_format="list")
    server = MlflowServer(formats.uri, tmp_path / "artifacts", workers=1, log=tmp_path / "server.log").start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            # The grid renders only the columns in view: wide enough for every metric of both datasets.
            page = browser.new_page(viewport={"width": 9000, "height": 700})
            page.goto(f"{server.uri}/#/experiments/{experiment.experiment_id}/models?workflowType=machine_learning")
            for text in (*formats.runs, "ms_per_image", "parity_mask_iou"):
                page.get_by_text(text).first.wait_for(timeout=60_000)
            body = page.inner_text("body")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "mlflow-models-view-formats.png"), full_page=True)
            browser.close()
    finally:
        server.stop()
    for model in models:
        latest = {}
        for metric in model.metrics:
            if metric.key in ("ms_per_image", "parity_mask_iou"):
                latest[metric.key] = max(latest.get(metric.key, metric), metric, key=lambda m: (m.timestamp, m.step))
        assert _shown(latest["ms_per_image"].value, body), (model.name, latest["ms_per_image"].value)
        if model.name != "safetensors-fp32":
            assert _shown(latest["parity_mask_iou"].value, body), (model.name, latest["parity_mask_iou"].value)
