"""Meta's own model as a runtime: Meta's tiny image model (random weights) on real photos."""

import sys

import numpy as np
import pytest
import torch

from sam3ops.errors import UsageError, WeightsError
from sam3ops.inference import Segmenter
from sam3ops.inference.meta_core import MetaCore
from sam3ops.meta.package import MetaPackageError, cpu_shims
from sam3ops.predict.samples import sample_image

PROMPTS = ["person", "cat"]


@pytest.fixture(scope="module")
def segmenter(tiny_meta):
    return Segmenter.from_dir(tiny_meta, score_threshold=0.0)


@pytest.fixture(scope="module")
def photos():
    return [sample_image("astronaut"), sample_image("chelsea")]  # 512x512 and 300x451


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return 1.0 if union == 0 else float((a & b).sum() / union)


def test_a_meta_folder_runs_on_meta_model(segmenter):
    assert isinstance(segmenter.core, MetaCore)
    assert segmenter.core.meta_processor.resolution == 224  # the tiny preset's input, from the checkpoint's width


def test_equals_meta_own_processor(segmenter, photos):
    """Meta's Sam3Processor (set_image + set_text_prompt, every query kept) is the reference."""
    from sam3.model.sam3_image_processor import Sam3Processor

    meta = Sam3Processor(segmenter.core.model, resolution=224, device="cpu", confidence_threshold=0.0)
    image = photos[1]
    ours = segmenter.segment([image], PROMPTS)[0]
    for prompt in PROMPTS:
        with cpu_shims():
            state = meta.set_text_prompt(prompt, meta.set_image(image))
        mine = [i for i, label in enumerate(ours.labels) if label == prompt]
        assert len(mine) == len(state["scores"]) == 20  # every query of the tiny model
        np.testing.assert_allclose(ours.scores[mine], state["scores"].numpy(), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(ours.boxes[mine], state["boxes"].numpy(), rtol=1e-4, atol=1e-3)
        ious = [_iou(ours.masks[i], m[0].numpy()) for i, m in zip(mine, state["masks"])]
        assert min(ious) > 0.98  # sigmoid before (transformers) or after (Meta) the resize: edge pixels


def test_batched_pairs_index_the_right_images(segmenter, photos):
    together = segmenter.segment(photos, PROMPTS)
    for image, batched in zip(photos, together):
        alone = segmenter.segment([image], PROMPTS)[0]
        assert batched.labels == alone.labels
        np.testing.assert_allclose(batched.scores, alone.scores, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(batched.boxes, alone.boxes, rtol=1e-4, atol=1e-3)


def test_prompt_cache_keeps_rows_apart(segmenter, photos):
    segmenter.clear_text_cache()
    both = segmenter.segment([photos[0]], PROMPTS)[0]
    segmenter.clear_text_cache()
    cat_only = segmenter.segment([photos[0]], ["cat"])[0]
    np.testing.assert_allclose(cat_only.scores, both.scores[[i for i, la in enumerate(both.labels) if la == "cat"]],
                               rtol=1e-4, atol=1e-6)


def test_bf16_is_autocast_over_fp32_weights(tiny_meta, photos, segmenter):
    half = Segmenter.from_dir(tiny_meta, precision="bf16", score_threshold=0.0)
    assert next(half.core.model.parameters()).dtype == torch.float32  # Meta's way: weights stay fp32
    result = half.segment([photos[0]], ["person"])[0]
    reference = segmenter.segment([photos[0]], ["person"])[0]
    assert np.isfinite(result.scores).all() and len(result.scores) == len(reference.scores)
    assert np.abs(result.scores - reference.scores).max() < 0.05


def test_runtime_meta_on_a_transformers_folder_says_how_to_convert(tiny_weights):
    with pytest.raises(UsageError, match="transformers layout") as caught:
        Segmenter.from_dir(tiny_weights, runtime="meta")
    assert "--layout meta" in caught.value.one_line()


def test_unknown_runtime_is_one_line(tiny_meta):
    with pytest.raises(UsageError, match="unknown runtime"):
        Segmenter.from_dir(tiny_meta, runtime="jax")


@pytest.mark.parametrize("content", ["not a torch file", "no detector keys", "missing parameters"])
def test_not_a_meta_checkpoint(tmp_path, tiny_meta, content):
    file = tmp_path / "sam3.pt"
    if content == "not a torch file":
        file.write_bytes(b"\x00" * 4096)
    elif content == "no detector keys":
        torch.save({"model.weight": torch.zeros(2)}, file)
    else:
        state = torch.load(tiny_meta / "sam3.pt", weights_only=True)
        torch.save({k: v for k, v in state.items() if "transformer.decoder" not in k}, file)
    with pytest.raises(WeightsError, match="sam3.pt"):
        Segmenter.from_dir(tmp_path, runtime="meta")


def test_without_meta_package_one_line(tiny_meta, monkeypatch):
    monkeypatch.setitem(sys.modules, "sam3", None)  # as if Meta's package were not installed
    with pytest.raises(MetaPackageError, match="missing sam3") as caught:
        Segmenter.from_dir(tiny_meta)
    assert "pip install" in caught.value.one_line()
