"""The torch runtime's speed options: each gives the default path's results, and bad values are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sam3ops.errors import UsageError
from sam3ops.inference import Segmenter
from sam3ops.inference.tuning import TorchOptions
from sam3ops.predict.samples import sample_image

PROMPTS = ["person", "cat", "cup"]


@pytest.fixture(scope="module")
def photos():
    return [sample_image("astronaut"), sample_image("chelsea"), sample_image("coffee")]


@pytest.fixture(scope="module")
def default_results(tiny_weights, photos):
    return Segmenter.from_dir(tiny_weights, score_threshold=0.0).segment(photos, PROMPTS)


def assert_same(reference, candidate, *, score_tol=1e-5, agree=0.9999):
    for ref, got in zip(reference, candidate, strict=True):
        assert got.labels == ref.labels and got.masks.shape == ref.masks.shape
        assert got.masks.dtype == bool and got.boxes.dtype == np.float32 and got.scores.dtype == np.float32
        assert np.abs(got.scores - ref.scores).max() <= score_tol
        assert np.abs(got.boxes - ref.boxes).max() <= max(1e-3, score_tol * 100)
        assert (got.masks == ref.masks).mean() >= agree and (got.semantic == ref.semantic).mean() >= agree


@pytest.mark.parametrize("options", [
    {"batch_pairs": True},
    {"batch_pairs": True, "decode_batch": 4},  # chunks that cross from one image to the next
    {"gpu_postprocess": True},
    {"gpu_postprocess": True, "native_outputs": True},
    {"pinned_inputs": True},
    {"attention": "eager"},
    {"batch_pairs": True, "decode_batch": 64, "gpu_postprocess": True, "native_outputs": True,
     "pinned_inputs": True},
])
def test_each_option_gives_the_default_results(tiny_weights, photos, default_results, options):
    seg = Segmenter.from_dir(tiny_weights, score_threshold=0.0, options=TorchOptions.parse(options))
    assert_same(default_results, seg.segment(photos, PROMPTS))


def test_decoder_calls_follow_the_pairs_of_the_whole_call(tiny_weights, photos):
    seg = Segmenter.from_dir(tiny_weights, options=TorchOptions(batch_pairs=True, decode_batch=4))
    seg.segment(photos, PROMPTS)  # 3 images x 3 prompts = 9 pairs: 3 decoder calls of <= 4
    assert seg.timings.calls["decoder"] == 3
    per_image = Segmenter.from_dir(tiny_weights, decode_batch=4)
    per_image.segment(photos, PROMPTS)
    assert per_image.timings.calls["decoder"] == 3  # one per image: 3 pairs each


def test_native_bf16_outputs_stay_close_to_bf16(tiny_weights, photos):
    bf16 = Segmenter.from_dir(tiny_weights, precision="bf16", score_threshold=0.0).segment(photos[:2], PROMPTS)
    native = Segmenter.from_dir(tiny_weights, precision="bf16", score_threshold=0.0,
                                options=TorchOptions(gpu_postprocess=True, native_outputs=True))
    assert_same(bf16, native.segment(photos[:2], PROMPTS), score_tol=1e-2, agree=0.99)


def test_thresholds_hold_on_the_device_path(tiny_weights, photos):
    options = TorchOptions(gpu_postprocess=True)
    none = Segmenter.from_dir(tiny_weights, score_threshold=1.0, options=options).segment(photos[:1], ["cat"])[0]
    assert none.labels == [] and none.masks.shape == (0, *none.size) and none.boxes.shape == (0, 4)
    default = Segmenter.from_dir(tiny_weights, score_threshold=0.2, mask_threshold=0.6).segment(photos, PROMPTS)
    device = Segmenter.from_dir(tiny_weights, score_threshold=0.2, mask_threshold=0.6, options=options)
    assert_same(default, device.segment(photos, PROMPTS))


def test_attention_asked_for_is_the_attention_run(tiny_weights):
    assert set(Segmenter.from_dir(tiny_weights).core.attention().values()) == {"sdpa"}  # transformers' default
    eager = Segmenter.from_dir(tiny_weights, options=TorchOptions(attention="eager")).core.attention()
    assert set(eager) >= {"Sam3ViTRoPEAttention", "CLIPAttention", "Sam3Attention"}
    assert set(eager.values()) == {"eager"}


def test_compile_mode_and_parts_wrap_what_was_asked(tiny_weights):
    core = Segmenter.from_dir(tiny_weights, options=TorchOptions(compile="max-autotune-no-cudagraphs",
                                                                 compile_parts=("text", "decoder"))).core
    compiled = torch._dynamo.eval_frame.OptimizedModule
    assert not isinstance(core.model.vision_encoder, compiled) and isinstance(core.model.text_encoder, compiled)
    assert core._decode is not core._decode_eager
    plain = Segmenter.from_dir(tiny_weights, compile=True).core  # the old switch: the encoders, default mode
    assert plain.options.compile == "default" and isinstance(plain.model.vision_encoder, compiled)


@pytest.mark.parametrize("values,message", [
    ({"attention": "magic"}, "unknown attention 'magic'"), ({"compile": "fast"}, "unknown compile mode 'fast'"),
    ({"compile_parts": "vision,neck"}, "unknown compile parts"), ({"batch_pairs": "yes"}, "must be true or false"),
    ({"decode_batch": 0}, "decode_batch must be a whole number"), ({"warp": True}, "unknown torch option 'warp'"),
])
def test_bad_options_are_refused(values, message):
    with pytest.raises(UsageError, match=message):
        TorchOptions.parse(values)


def test_options_from_text_and_their_names():
    options = TorchOptions.parse({"batch_pairs": "true", "decode_batch": "64", "compile": "reduce-overhead",
                                  "compile_parts": "vision,text,decoder"})
    assert options.batch_pairs is True and options.decode_batch == 64
    assert options.changed() == {"compile": "reduce-overhead", "compile_parts": ["vision", "text", "decoder"],
                                 "batch_pairs": True, "decode_batch": 64}
    assert options.label() == "compile=reduce-overhead+compile_parts=vision,text,decoder+batch_pairs+decode_batch=64"
    assert TorchOptions().changed() == {} and TorchOptions().label() == ""
