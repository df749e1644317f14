"""The notebooks run headless, top to bottom, on the tiny preset."""

import base64
import io

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient
from PIL import Image

from sam3ops.predict.samples import DEFAULT_SAMPLES, sample_image
from sam3ops.predict.viz import RANDOM_BANNER
from tests.conftest import REPO_ROOT
from tests.support.pictures import banner_rows, has_banner_text

pytestmark = pytest.mark.slow  # each notebook runs a kernel end to end


def test_sam3_notebook_shows_the_top_3_masks_marked_random_weights(tiny_weights, monkeypatch):
    """Its defaults on random weights: the 3 best masks per prompt on every photo, RANDOM WEIGHTS in plain sight."""
    monkeypatch.setenv("SAM3_WEIGHTS", str(tiny_weights))
    monkeypatch.setenv("SAM3_DEVICE", "cpu")
    monkeypatch.delenv("SAM3_TOP_K", raising=False)
    monkeypatch.delenv("SAM3_SCORE_THRESHOLD", raising=False)
    notebook = nbformat.read(REPO_ROOT / "notebooks" / "sam3_test.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO_ROOT / "notebooks")}}).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 4  # one overlay per sample photo
    text = "".join(o.get("text", "") for o in outputs)
    assert "random=True" in text and "astronaut" in text and "the 3 best masks per prompt" in text
    assert RANDOM_BANNER in text
    assert RANDOM_BANNER in "".join(o.get("data", {}).get("text/html", "") for o in outputs)  # the red banner
    assert "'person': 3" in text  # every prompt 3 times on every photo
    for name, output in zip(DEFAULT_SAMPLES, images):
        picture = np.asarray(Image.open(io.BytesIO(base64.b64decode(output["data"]["image/png"]))).convert("RGB"))
        rows = banner_rows(picture)
        assert rows >= 10 and has_banner_text(picture, rows), name
        photo = np.asarray(sample_image(name)).astype(int)
        tinted = (np.abs(picture[rows:].astype(int) - photo[rows:]).sum(axis=-1) > 20).mean()
        assert tinted > 0.05, (name, tinted)  # masks drawn over the photo


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
    assert "2 runs, 4 rows" in text and "RANDOM WEIGHTS: 2 of 2 runs benchmarked random weights" in text
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "torch-bf16" in html and "torch-fp32" in html  # the pivot table's columns
    charts = [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(charts) == 3
