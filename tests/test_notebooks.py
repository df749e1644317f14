"""The notebooks run headless, top to bottom, on the tiny preset."""

import nbformat
from nbclient import NotebookClient

from tests.conftest import REPO_ROOT


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
