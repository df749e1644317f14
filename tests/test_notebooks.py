"""The notebooks run headless, top to bottom, on the tiny preset."""

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow  # each notebook runs a kernel end to end


def test_sam3_notebook_runs_and_shows_overlays(tiny_weights, monkeypatch):
    monkeypatch.setenv("SAM3_WEIGHTS", str(tiny_weights))
    monkeypatch.setenv("SAM3_SCORE_THRESHOLD", "0.2")  # random weights score ~0.25: show some masks
    monkeypatch.setenv("SAM3_DEVICE", "cpu")
    notebook = nbformat.read(REPO_ROOT / "notebooks" / "sam3_test.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO_ROOT / "notebooks")}}).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 4  # one overlay per sample photo
    text = "".join(o.get("text", "") for o in outputs)
    assert "random=True" in text and "astronaut" in text


def test_benchmark_notebook_compares_two_runs(capsys, tiny_weights, monkeypatch):
    from tests.support.cli import run_cli

    for precision in ("fp32", "bf16"):
        code, _, err = run_cli(capsys, "bench", "--weights", str(tiny_weights), "--precision", precision,
                               "--batch", "1,2", "--iterations", "2", "--warmup", "1", "--image-size", "256")
        assert code == 0, err
    notebook = nbformat.read(REPO_ROOT / "notebooks" / "benchmark.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO_ROOT / "notebooks")}}).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "2 runs, 4 rows" in text
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "torch-bf16" in html and "torch-fp32" in html  # the pivot table's columns
    charts = [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(charts) == 3
