"""`sam3ops download` and `sam3ops init`: what they pass on, what they print, the tracked init run."""

from pathlib import Path
from types import SimpleNamespace

import mlflow

from sam3ops.tracking import redact
from tests.cli.helpers import finished, invoke
from tests.support.cli import run_cli


def test_download_passes_its_options_and_keeps_the_token_out_of_logs(replace):
    manifest = SimpleNamespace(commit="c0ffee" * 7, files=[1, 2, 3])
    done = SimpleNamespace(manifest=manifest, fetched=["model.safetensors"], bytes_downloaded=2_500_000, seconds=1.25)
    stage = replace("sam3ops.weights.stage.download_stage", finished("download", done))
    out = invoke("download", "--revision", "v1", "--output", "w", "--include", "pt", "--token", "hf_secret123").output
    assert stage.kwargs == {"repo_id": "facebook/sam3", "revision": "v1", "output": "w", "include": "pt",
                            "token": "hf_secret123"}
    assert out.strip() == "facebook/sam3@c0ffeec0ffee -> w: 1 of 3 files fetched, 2.5 MB in 1.2 s (run run0123456789)"
    assert redact.redact("token hf_secret123") == "token ***"


def test_init_says_whether_the_folder_already_held_the_preset(replace):
    done = SimpleNamespace(output=Path("weights/sam3-tiny"), manifest=SimpleNamespace(commit="ab" * 20))
    stage = replace("sam3ops.weights.stage.init_stage", finished("init", done, reused=True))
    out = invoke("init", "--seed", "3").output
    assert stage.kwargs == {"preset": "tiny", "output": "auto", "seed": 3, "force": False}
    assert out.startswith("weights/sam3-tiny already holds the tiny preset with RANDOM weights (seed 3, commit abab")


def test_init_cli_tracks_a_random_weights_run(capsys, tmp_path):
    code, out, err = run_cli(capsys, "init", "--preset", "tiny", "--output", str(tmp_path / "w"))
    assert code == 0, err
    assert "now holds the tiny preset with RANDOM weights" in out
    run = mlflow.search_runs(experiment_names=["sam3-init"], output_format="list")[0]
    assert out.strip().endswith(f"(run {run.info.run_id})")
    assert run.info.status == "FINISHED"
    assert run.data.tags["weights_random"] == "true" and run.data.tags["preset"] == "tiny"
    assert run.data.params["preset"] == "tiny" and run.data.metrics["parameters"] > 1e6
    mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(tmp_path / "a"))
    assert (tmp_path / "a" / "manifest.json").is_file()
