"""`sam3ops pipeline`: its options are the pipeline config's fields; the summary it prints."""

from pathlib import Path

from sam3ops.pipeline.config import PipelineConfig
from sam3ops.pipeline.summary import PipelineSummary, StageRow
from tests.cli.helpers import finished, invoke

SUMMARY = PipelineSummary(weights=Path("weights/sam3-tiny"), weights_random=True, images_ok=4, instances=9,
                          predictions=Path("predictions"), production="2",
                          rows=[StageRow("weights", "fp32", "w" * 32, reused=True, parity="reference"),
                                StageRow("promote", "fp16", "p" * 32, version="2", note="production")])


def test_the_options_are_the_config_fields_with_the_library_defaults(replace):
    run = replace("sam3ops.pipeline.run.run_pipeline", finished("pipeline", SUMMARY, run_id="parent"))
    out = invoke("pipeline", "--formats", "fp16", "--image", "a.png", "--alias", "staging").output
    given = run.kwargs
    assert given == {**PipelineConfig().params(), "images": ("a.png",), "prompt_sets": ("single_objects",),
                     "formats": "fp16", "alias": "staging"}
    assert PipelineConfig(**given).images == ("a.png",)  # every option is a field: nothing is renamed on the way
    lines = out.splitlines()
    assert lines[0].split() == ["stage", "artifact", "run", "reused", "parity", "ms/image", "images/s", "version"]
    assert lines[1].split() == ["weights", "fp32", "w" * 12, "yes", "reference"]
    assert "weights     weights/sam3-tiny (RANDOM)" in lines
    assert "predict     4 images, 9 instances -> predictions" in lines
    assert "staging     models:/sam3@staging -> version 2" in lines and "run         parent" in lines


def test_the_closing_ui_line_links_the_benchmark_runs_of_the_runs_experiment(replace):
    import mlflow

    from sam3ops import tracking
    from sam3ops.pipeline.summary import benchmarks_link
    from sam3ops.tracking.ui import with_command

    tracking.configure()
    experiment_id = tracking.ensure_experiment("sam3-pipeline")
    parent = mlflow.MlflowClient().create_run(experiment_id).info.run_id
    replace("sam3ops.pipeline.run.run_pipeline", finished("pipeline", SUMMARY, run_id=parent))
    [ui] = [line for line in invoke("pipeline").output.splitlines() if line.startswith("ui ")]
    assert ui == f"ui          {with_command(benchmarks_link(experiment_id))}"
    assert ui.startswith(f"ui          http://127.0.0.1:5000/#/experiments/{experiment_id}/runs?"
                         "workflowType=machine_learning&viewStateShareKey=sam3ops-")
    assert ui.endswith(f"  (start the UI with: mlflow ui --backend-store-uri {mlflow.get_tracking_uri()})")


def test_demo_last_line_names_the_venvs_mlflow_and_the_pipelines_benchmark_runs():
    from sam3ops import tracking
    from sam3ops.pipeline.summary import benchmarks_link, ui_line

    assert ui_line().startswith("Benchmark runs of sam3-pipeline: http://127.0.0.1:5000/#/experiments?")
    tracking.configure()
    experiment_id = tracking.ensure_experiment("sam3-pipeline")
    line = ui_line(mlflow=".venv/bin/mlflow")
    assert line.startswith(f"Benchmark runs of sam3-pipeline: {benchmarks_link(experiment_id)}  ")
    assert line.endswith(f"(start the UI with: .venv/bin/mlflow ui --backend-store-uri {tracking.tracking_uri()})")
