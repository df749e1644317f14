"""`sam3ops predict` on Meta's own model: a Meta-layout folder, `--runtime meta`, and its bad inputs."""

import json
import sys

import mlflow
import pytest

from sam3ops.predict.samples import write_samples
from tests.support.cli import run_cli


def _run():
    return mlflow.search_runs(experiment_names=["sam3-predict"], output_format="list",
                              order_by=["start_time DESC"])[0]


@pytest.fixture
def photo(tmp_path):
    return write_samples(tmp_path / "photos", ["chelsea"])[0]


def test_predict_on_meta_model_writes_results_and_logs_the_runtime(capsys, tmp_path, tiny_meta, photo):
    code, out, err = run_cli(capsys, "predict", str(photo), "--weights", str(tiny_meta), "--runtime", "meta",
                             "--prompt", "cat", "--output", "out", "--score-threshold", "0.0")
    assert code == 0, err
    assert "RANDOM weights" in out
    result = json.loads((tmp_path / "out" / photo.stem / "result.json").read_text())
    assert len(result["instances"]) == 20  # every query of Meta's tiny model, threshold 0
    run = _run()
    assert run.info.status == "FINISHED" and run.data.params["runtime"] == "meta"
    assert run.data.tags["weights_commit"] == "meta-tiny-seed0"


@pytest.mark.parametrize("case, fragment, exit_code", [
    ("transformers folder", "--layout meta", 2),  # a usage error
    ("no package", "missing sam3", 1),
])
def test_meta_runtime_bad_input_is_one_line_and_a_failed_run(capsys, tiny_weights, tiny_meta, photo, monkeypatch,
                                                            case, fragment, exit_code):
    weights = tiny_weights if case == "transformers folder" else tiny_meta
    if case == "no package":
        monkeypatch.setitem(sys.modules, "sam3", None)  # as if Meta's package were not installed
    code, _, err = run_cli(capsys, "predict", str(photo), "--weights", str(weights), "--runtime", "meta",
                           "--prompt", "cat", "--output", "out")
    lines = [line for line in err.splitlines() if line.startswith("sam3ops: error:")]
    assert code == exit_code and len(lines) == 1 and fragment in lines[0], err
    assert _run().info.status == "FAILED"
