"""The experiment's models view in the MLflow UI lists every format, named by format and precision,
with its latency and parity side by side; checked in a real headless Chromium."""

from __future__ import annotations

import re
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
    """The number on the page: in full (388.2727430009254, as the grid shows it in a column wide
    enough), or cut short with an ellipsis or rounded to 1-4 decimals where a column is narrower."""
    text = f"{value:.10f}"
    shorter = {form for d in (1, 2, 3, 4) for form in (f"{value:.{d}f}", text[:len(f"{value:.{d}f}")])}
    # A whole number (a parity of exactly 1.0, as ONNX fp32 can give) is shown without decimals, "1":
    # only a grid cell of exactly that (a line of its own in the page's text) counts.
    whole = value.is_integer() and re.search(rf"(^|\n){int(value)}(\n|$)", body) is not None
    return whole or any(form in body for form in (repr(value), *shorter))


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
        assert _shown(_grid_value(model, "ms_per_image", "benchmark-photos"), body), model.name
        if model.name != "safetensors-fp32":
            assert _shown(_grid_value(model, "parity_mask_iou", "parity-photos"), body), model.name


def _grid_value(model, key: str, dataset: str) -> float:
    """The value the grid shows in ``key``'s column under ``dataset``: the first metric of that key
    and dataset in the list the server returns (the same search the page makes; the grid's cell
    takes the first match). With one ms_per_image per batch that is batch 1's, not the latest
    (largest batch) one that ``sam3ops rank`` orders by."""
    found = [metric.value for metric in model.metrics if metric.key == key and metric.dataset_name == dataset]
    assert found, f"{model.name} has no {key} on {dataset}"
    return found[0]
