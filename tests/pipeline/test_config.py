"""The main job's options: the policy, the formats and the batch sizes are refused before any stage runs."""

from dataclasses import fields

import pytest

from sam3ops.convert.config import FORMATS
from sam3ops.errors import UsageError
from sam3ops.pipeline.config import AUTO_FORMATS, PipelineConfig, parse_formats, parse_policy


def test_policies():
    assert parse_policy("throughput") == ("throughput", None) and parse_policy("latency@8") == ("latency", 8)
    for bad in ("latency", "latency@0", "latency@x", "fastest"):
        with pytest.raises(UsageError, match="unknown promotion policy"):
            parse_policy(bad)


def test_formats_are_the_convert_stage_formats_without_duplicates():
    assert parse_formats("onnx, fp16,onnx") == ("onnx", "fp16") and parse_formats("auto") == ()
    assert parse_formats(",".join(FORMATS)) == FORMATS
    with pytest.raises(UsageError, match="unknown format 'gguf'") as caught:
        parse_formats("fp16,gguf")
    assert caught.value.hint == f"choose from: {', '.join(FORMATS)} (or auto)"


def test_auto_formats_on_a_cpu():
    assert PipelineConfig().formats_for(gpu=False) == list(AUTO_FORMATS)
    assert PipelineConfig(formats="bf16").formats_for(gpu=True) == ["bf16"]


@pytest.mark.parametrize("options, message", [
    ({"policy": "latency@8", "batch": "1,4"}, "policy latency@8 ranks at batch 8, which the benchmark does not run"),
    ({"batch": "0"}, "batch 0 is out of range"),
    ({"formats": "gguf"}, "unknown format 'gguf'"),
    ({"policy": "fastest"}, "unknown promotion policy 'fastest'"),
    ({"top_k": 0}, "top_k must be a whole number of at least 1, got 0"),
    ({"top_k": "3"}, "top_k must be a whole number of at least 1, got '3'"),
])
def test_bad_options_are_refused_on_creation(options, message):
    with pytest.raises(UsageError, match=message):
        PipelineConfig(**options)


def test_lists_become_tuples_and_params_are_text_ready():
    config = PipelineConfig(images=["a.png", "b.png"], prompt_sets=["animals", "kitchen"], batch="4,1",
                            policy="throughput")
    assert config.images == ("a.png", "b.png") and config.batches == (4, 1) and config.ranking == ("throughput", None)
    params = config.params()
    assert params["images"] == "a.png b.png" and params["prompt_sets"] == "animals,kitchen"
    assert set(params) == {f.name for f in fields(PipelineConfig)}


def test_top_k_auto_is_three_on_random_weights_and_the_threshold_on_real_ones():
    assert PipelineConfig().top_k == "auto" and PipelineConfig().params()["top_k"] == "auto"
    assert PipelineConfig().top_k_for(random=True) == 3 and PipelineConfig().top_k_for(random=False) is None
    for off in (None, "off"):
        config = PipelineConfig(top_k=off)
        assert config.top_k_for(random=True) is None and config.params()["top_k"] == "off"
    assert PipelineConfig(top_k=5).top_k_for(random=True) == 5 == PipelineConfig(top_k=5).top_k_for(random=False)
