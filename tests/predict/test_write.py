"""The predict stage end to end: files written, the MLflow run, bad inputs, the entry points."""

import json
import subprocess

import mlflow
import pytest
from PIL import Image
from pycocotools import mask as coco_mask

from sam3ops.predict import write as predict_lib
from sam3ops.predict.samples import write_samples
from tests.conftest import REPO_ROOT, subprocess_env
from tests.support.cli import run_cli
from tests.support.pictures import assert_overlay_shows_masks_and_banner


@pytest.fixture
def photos(tmp_path):
    return write_samples(tmp_path / "photos", ["astronaut", "chelsea"])


def _run(experiment="sam3-predict"):
    return mlflow.search_runs(experiment_names=[experiment], output_format="list", order_by=["start_time DESC"])[0]


def test_predict_writes_everything_and_tracks_it(capsys, tmp_path, tiny_weights, photos):
    code, out, err = run_cli(capsys, "predict", str(tmp_path / "photos"), "--weights", str(tiny_weights),
                             "--prompt", "person", "--prompt-set", "body_parts", "--output", "out",
                             "--score-threshold", "0.2")
    assert code == 0, err
    assert "RANDOM weights" in out
    for photo in photos:
        folder = tmp_path / "out" / photo.stem
        assert sorted(p.name for p in folder.iterdir()) == sorted(predict_lib.OUTPUT_FILES)
        result = json.loads((folder / "result.json").read_text())
        size = Image.open(photo).size
        assert (result["width"], result["height"]) == size
        assert result["prompts"][0] == "person" and "left hand" in result["prompts"]
        assert result["score_threshold"] == 0.2 and result["top_k"] is None and result["weights_random"] is True
        labels = Image.open(folder / "masks.png")
        assert labels.size == size and labels.mode.startswith("I")
        rle = json.loads((folder / "masks_rle.json").read_text())
        assert len(rle) == len(result["instances"]) > 0
        decoded = coco_mask.decode({"size": rle[0]["rle"]["size"], "counts": rle[0]["rle"]["counts"].encode()})
        assert decoded.shape == (size[1], size[0]) and decoded.sum() == result["instances"][0]["area"]
        assert Image.open(folder / "overlay.png").size == size
        page = (folder / "page.html").read_text()
        assert "plotly.js v" in page and "<script src=" not in page  # plotly.js embedded: opens offline
        assert '"args2"' in page  # per-prompt toggle buttons
        assert "(score above 0.2)" in page and "RANDOM WEIGHTS" in page

    run = _run()
    assert run.info.status == "FINISHED" and run.data.tags["all_inputs_ok"] == "true"
    assert run.data.params["device"] == "cpu" and run.data.params["precision"] == "fp32"
    assert run.data.params["prompts"].startswith("person|left hand")
    assert run.data.tags["weights_random"] == "true" and len(run.data.tags["weights_commit"]) == 40
    assert run.data.params["weights_random"] == "true"
    assert run.data.params["weights_commit"] == run.data.tags["weights_commit"]
    metrics = run.data.metrics
    assert metrics["images_ok"] == 2 and metrics["images_failed"] == 0
    assert metrics["instances_person"] > 0 and metrics["instances_left hand"] >= 0
    for key in ("stage_vision_ms", "stage_text_ms", "stage_decoder_ms", "preprocess_ms", "postprocess_ms",
                "mean_score"):
        assert metrics[key] > 0, key
    listed = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "predictions/astronaut")}
    assert "predictions/astronaut/overlay.png" in listed and "predictions/astronaut/page.html" in listed


def test_top_k_on_random_weights_shows_the_k_best_masks_marked_random(capsys, tmp_path, tiny_weights, photos):
    """What `make demo` relies on: random weights pass no threshold, top-3 still shows masks."""
    code, out, err = run_cli(capsys, "predict", str(tmp_path / "photos"), "--weights", str(tiny_weights),
                             "--prompt", "person", "--prompt", "cat", "--output", "out", "--top-k", "3",
                             "--score-threshold", "1.0")  # the threshold is not applied with --top-k
    assert code == 0, err
    assert "2 images, 12 instances" in out  # 3 per prompt and image
    for photo in photos:
        folder = tmp_path / "out" / photo.stem
        result = json.loads((folder / "result.json").read_text())
        assert result["top_k"] == 3 and result["score_threshold"] is None and result["weights_random"] is True
        assert [i["label"] for i in result["instances"]] == ["person"] * 3 + ["cat"] * 3
        scores = [i["score"] for i in result["instances"]]
        assert scores[:3] == sorted(scores[:3], reverse=True) and scores[3:] == sorted(scores[3:], reverse=True)
        assert_overlay_shows_masks_and_banner(folder, photo)
        page = (folder / "page.html").read_text()
        assert "<title>RANDOM WEIGHTS: these masks mean nothing</title>" in page
        assert f"{photo.name} (the 3 best per prompt)" in page
    run = _run()
    assert run.info.status == "FINISHED" and run.data.params["top_k"] == "3"


def test_top_k_below_one_fails_the_run_in_one_line(capsys, tmp_path, tiny_weights, photos):
    code, _, err = run_cli(capsys, "predict", str(tmp_path / "photos"), "--weights", str(tiny_weights),
                           "--prompt", "cat", "--output", "out", "--top-k", "0")
    lines = [line for line in err.splitlines() if line.startswith("sam3ops: error:")]
    assert code == 2 and len(lines) == 1 and "top_k must be a whole number of at least 1, got 0" in lines[0]
    assert _run().info.status == "FAILED" and not (tmp_path / "out").exists()


def test_one_bad_file_never_stops_the_rest(capsys, tmp_path, tiny_weights, photos):
    (tmp_path / "photos" / "empty.png").write_bytes(b"")
    (tmp_path / "photos" / "text.jpg").write_text("hello")
    code, _, err = run_cli(capsys, "predict", str(tmp_path / "photos"), str(tmp_path / "missing.png"),
                           "--weights", str(tiny_weights), "--prompt", "cat", "--output", "out")
    assert code == 1
    assert "empty.png: empty file" in err and "text.jpg: not an image" in err and "missing.png: no such file" in err
    assert err.strip().splitlines()[-1] == (
        "sam3ops: error: 3 of 5 images failed (hint: see the lines above (and the run's failures.json) for each"
        " failed input)")
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"astronaut", "chelsea"}
    run = _run()
    assert run.info.status == "FAILED" and run.data.metrics["images_ok"] == 2 and run.data.metrics["images_failed"] == 3
    failures = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/failures.json")["failures"]
    assert len(failures) == 3 and all(f["error"] for f in failures)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--prompt", "  "], "prompt is empty or blank"),
        (["--prompt-set", "nope"], "unknown prompt set 'nope'"),
        ([], "no prompts given"),
    ],
)
def test_prompt_errors(capsys, tmp_path, tiny_weights, photos, args, fragment):
    code, _, err = run_cli(capsys, "predict", str(tmp_path / "photos"), "--weights", str(tiny_weights), *args)
    assert code == 1 and fragment in err.strip().splitlines()[-1]
    assert _run().info.status == "FAILED"


def test_missing_weights_says_download_or_init(capsys, tmp_path, photos):
    code, _, err = run_cli(capsys, "predict", str(tmp_path / "photos"), "--prompt", "cat")
    line = err.strip().splitlines()[-1]
    assert code == 1 and "weights folder weights/sam3 not found" in line
    assert "sam3ops download" in line and "sam3ops init" in line
    assert _run().info.status == "FAILED"


def test_interrupted_write_leaves_no_half_result(monkeypatch, tmp_path, tiny_weights, photos):
    from sam3ops.inference import Segmenter

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(predict_lib.viz, "interactive_page", broken)
    with pytest.raises(OSError):
        predict_lib.predict(segmenter=Segmenter.from_dir(tiny_weights), images=photos, prompts=["cat"],
                            output=tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.slow
def test_mlflow_run_predict_entry_point(tmp_path, tiny_weights, photos):
    done = subprocess.run(
        ["mlflow", "run", str(REPO_ROOT), "-e", "predict", "--env-manager", "local", "--experiment-name",
         "sam3-predict", "-P", f"images={tmp_path / 'photos'}", "-P", f"weights={tiny_weights}",
         "-P", f"output={tmp_path / 'out'}", "-P", "prompt_set=body_parts"],
        env=subprocess_env(), capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run = _run()
    assert run.info.status == "FINISHED" and run.data.tags["mlflow.project.entryPoint"] == "predict"
    assert run.data.params["prompt_set"] == "body_parts" and run.data.metrics["images_ok"] == 2
    assert (tmp_path / "out" / "chelsea" / "page.html").is_file()
