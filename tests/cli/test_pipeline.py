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
