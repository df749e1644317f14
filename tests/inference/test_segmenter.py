"""The inference core on the tiny preset and real photos."""

import numpy as np
import pytest
import torch
from transformers import Sam3Model, Sam3Processor

from sam3ops.errors import PromptsError, UsageError, WeightsError
from sam3ops.inference import Segmenter, TorchCore
from sam3ops.predict.samples import sample_image


@pytest.fixture(scope="module")
def segmenter(tiny_weights):
    return Segmenter.from_dir(tiny_weights, score_threshold=0.0)


@pytest.fixture(scope="module")
def photos():
    return [sample_image("astronaut"), sample_image("chelsea")]  # 512x512 and 300x451


def test_three_parts_equal_one_forward_call_with_a_padding_box(tiny_weights, photos):
    """The parts run what ``Sam3Model`` runs for a text prompt plus one padding box (label -10):
    the geometry encoder's CLS token joins the prompt, as in Meta's model (tests/meta)."""
    model = Sam3Model.from_pretrained(tiny_weights).eval()
    processor = Sam3Processor.from_pretrained(tiny_weights)
    prompts = ["person", "cat", "orange tabby cat"]
    inputs = processor(images=photos[1], text=prompts, return_tensors="pt")
    boxes = torch.tensor([[[0.2, 0.3, 0.1, 0.1]]]).repeat(len(prompts), 1, 1)  # any box: it is masked out
    with torch.no_grad():
        reference = model(pixel_values=inputs.pixel_values.repeat(len(prompts), 1, 1, 1),
                          input_ids=inputs.input_ids, attention_mask=inputs.attention_mask,
                          input_boxes=boxes, input_boxes_labels=torch.full((len(prompts), 1), -10))
        text_only = model(pixel_values=inputs.pixel_values[:1], input_ids=inputs.input_ids[:1],
                          attention_mask=inputs.attention_mask[:1])
    core = TorchCore(model)
    vision = core.encode_image(inputs.pixel_values)
    text = core.encode_text(inputs.input_ids, inputs.attention_mask)
    parts = core.decode(vision.select([0] * len(prompts)), text, inputs.attention_mask)
    for name in parts._fields:
        torch.testing.assert_close(getattr(parts, name), getattr(reference, name), rtol=1e-5, atol=1e-5)
    # Without the geometry encoder (no box at all) the prompt is another one: the outputs differ.
    assert (parts.pred_logits[0] - text_only.pred_logits[0]).abs().max() > 1e-3


def test_result_shapes_dtypes_ranges(segmenter, photos):
    prompts = ["person", "cat"]
    results = segmenter.segment(photos, prompts, names=["astronaut", "chelsea"])
    for result, photo in zip(results, photos):
        n = len(result.labels)
        assert n == 2 * 20  # score threshold 0: every query of the tiny model, for each prompt
        assert result.masks.shape == (n, photo.height, photo.width) and result.masks.dtype == bool
        assert result.boxes.shape == (n, 4) and result.boxes.dtype == np.float32
        assert (result.boxes[:, [0, 2]] >= -1).all() and (result.boxes[:, [0, 2]] <= photo.width + 1).all()
        assert (result.boxes[:, 2] >= result.boxes[:, 0]).all() and (result.boxes[:, 3] >= result.boxes[:, 1]).all()
        assert ((result.scores >= 0) & (result.scores <= 1)).all() and result.scores.dtype == np.float32
        assert set(result.labels) == set(prompts) and result.counts() == {"person": 20, "cat": 20}
        assert result.semantic.shape == (photo.height, photo.width) and result.semantic.dtype == np.uint16
        assert result.semantic.max() <= len(prompts)
        assert result.to_json()["instances"][0].keys() == {"label", "score", "box_xyxy", "area"}


def test_vision_once_per_image_and_text_cached(tiny_weights, photos):
    seg = Segmenter.from_dir(tiny_weights, decode_batch=2)
    seg.segment(photos[:1], ["person", "cat", "dog", "car", "cup"])
    assert seg.timings.calls["vision"] == 1
    assert seg.timings.calls["text"] == 1  # the five new prompts in one text-encoder call
    assert seg.timings.calls["decoder"] == 3  # 5 pairs in chunks of 2
    seg.segment(photos[1:], ["cat", "person"])
    assert seg.timings.calls["text"] == 1  # both cached
    assert seg.timings.calls["vision"] == 2
    assert set(seg.timings.mean_ms()) == {"preprocess", "vision", "text", "decoder", "postprocess"}


def test_thresholds(tiny_weights, photos):
    assert len(Segmenter.from_dir(tiny_weights, score_threshold=1.0).segment(photos[:1], ["cat"])[0].labels) == 0
    loose = Segmenter.from_dir(tiny_weights, score_threshold=0.0, mask_threshold=0.0).segment(photos[:1], ["cat"])[0]
    tight = Segmenter.from_dir(tiny_weights, score_threshold=0.0, mask_threshold=1.0).segment(photos[:1], ["cat"])[0]
    assert loose.areas.sum() > tight.areas.sum() == 0
    with pytest.raises(UsageError, match="score_threshold must be between 0 and 1"):
        Segmenter.from_dir(tiny_weights, score_threshold=1.5)


def test_top_k_keeps_the_k_best_per_prompt_whatever_their_score(tiny_weights, photos):
    every = Segmenter.from_dir(tiny_weights, score_threshold=0.0).segment(photos, ["person", "cat"])
    # A threshold of 1.0 keeps nothing; with top_k it is not applied.
    best = Segmenter.from_dir(tiny_weights, score_threshold=1.0, top_k=3).segment(photos, ["person", "cat"])
    for full, top in zip(every, best):
        assert top.counts() == {"person": 3, "cat": 3}
        for prompt in ("person", "cat"):
            mine = [i for i, label in enumerate(full.labels) if label == prompt]
            order = np.argsort(-full.scores[mine], kind="stable")[:3]
            chosen = [mine[i] for i in order]
            kept = [i for i, label in enumerate(top.labels) if label == prompt]
            np.testing.assert_allclose(top.scores[kept], full.scores[chosen], rtol=1e-6)  # the 3 best, best first
            np.testing.assert_allclose(top.boxes[kept], full.boxes[chosen], rtol=1e-5, atol=1e-4)
            assert (top.masks[kept] == full.masks[chosen]).all()
        assert (top.semantic == full.semantic).all()  # the semantic map does not depend on the selection


def test_top_k_larger_than_the_queries_keeps_them_all(tiny_weights, photos):
    result = Segmenter.from_dir(tiny_weights, top_k=1000).segment(photos[:1], ["cat"])[0]
    assert result.counts() == {"cat": 20}  # the tiny model's 20 queries


@pytest.mark.parametrize("top_k", [0, -2, 2.5, True])
def test_top_k_must_be_a_whole_number_of_at_least_one(tiny_weights, top_k):
    with pytest.raises(UsageError, match="top_k must be a whole number of at least 1") as info:
        Segmenter.from_dir(tiny_weights, top_k=top_k)
    assert "--top-k 3" in info.value.one_line() and "\n" not in info.value.one_line()


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_half_precisions_run_and_stay_close(tiny_weights, photos, precision):
    full = Segmenter.from_dir(tiny_weights, score_threshold=0.0).segment(photos[:1], ["person"])[0]
    half = Segmenter.from_dir(tiny_weights, precision=precision, score_threshold=0.0).segment(photos[:1], ["person"])[0]
    assert half.masks.shape == full.masks.shape
    assert np.isfinite(half.scores).all() and np.abs(half.scores - full.scores).max() < 0.05


def test_prompt_problems(segmenter, photos, caplog):
    with pytest.raises(PromptsError, match="blank"):
        segmenter.segment(photos[:1], ["cat", "   "])
    with pytest.raises(PromptsError, match="no prompts"):
        segmenter.segment(photos[:1], [])
    long_prompt = "a cat " + "that is very fluffy and orange " * 8
    result = segmenter.segment(photos[:1], [long_prompt])[0]
    assert result.labels and any("tokens; SAM3 reads 32" in w for w in segmenter.warnings)


def test_missing_or_incomplete_weights(tmp_path):
    with pytest.raises(WeightsError, match="not found") as info:
        Segmenter.from_dir(tmp_path / "nope")
    assert "sam3ops download" in info.value.one_line() and "sam3ops init" in info.value.one_line()
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(WeightsError, match="not a complete SAM3 checkpoint"):
        Segmenter.from_dir(tmp_path / "half")


def test_cuda_requested_without_gpu(tiny_weights):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(UsageError, match="CUDA is not available"):
        Segmenter.from_dir(tiny_weights, device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
def test_cuda_matches_cpu(tiny_weights, photos):
    cpu = Segmenter.from_dir(tiny_weights, score_threshold=0.0).segment(photos[:1], ["person"])[0]
    gpu = Segmenter.from_dir(tiny_weights, device="cuda", score_threshold=0.0).segment(photos[:1], ["person"])[0]
    assert np.abs(cpu.scores - gpu.scores).max() < 1e-3


@pytest.mark.slow
def test_torch_compile_matches_eager(tiny_weights, photos):
    eager = Segmenter.from_dir(tiny_weights, score_threshold=0.0).segment(photos[:1], ["person"])[0]
    compiled = Segmenter.from_dir(tiny_weights, compile=True, score_threshold=0.0).segment(photos[:1], ["person"])[0]
    assert np.abs(eager.scores - compiled.scores).max() < 1e-4
    assert (eager.masks == compiled.masks).mean() > 0.999


def test_unknown_precision_and_whitespace_variants(tiny_weights, photos):
    with pytest.raises(UsageError, match="unknown precision 'fp8'") as info:
        Segmenter.from_dir(tiny_weights, precision="fp8")
    assert "fp32, fp16, bf16" in info.value.one_line()
    # "cat" and " cat  " are one prompt: one set of instances, labelled once
    result = Segmenter.from_dir(tiny_weights, score_threshold=0.0).segment(photos[:1], ["cat", " cat  ", "dog"])[0]
    assert result.prompts == ["cat", "dog"] and result.counts() == {"cat": 20, "dog": 20}
