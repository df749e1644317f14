"""Meta's model (tiny, random, seeded) and its conversion give the same raw outputs on a real photo.

transformers' ``Sam3Model`` runs its geometry encoder only when given boxes, while Meta's model always
runs it (an empty geometric prompt still adds the encoder's CLS token to the prompt). The converted
model is therefore run as Meta runs a text prompt: with one padding box (label -10), which the
geometry encoder masks out, so its CLS token joins the prompt exactly as in Meta's forward; TorchCore
(what every stage runs) does the same.
"""

import numpy as np
import pytest
import torch
from skimage import data

from sam3ops.convert import parity
from sam3ops.inference.core import Outputs, TorchCore
from sam3ops.inference.result import Result
from sam3ops.meta import convert
from sam3ops.meta.reference import raw_outputs
from sam3ops.weights.presets import build_processor

PROMPT = "cat"


@pytest.fixture(scope="module")
def photo_inputs():
    from sam3ops.weights.presets import build_config

    processor = build_processor(build_config("tiny"))
    return processor, processor(images=data.chelsea(), text=PROMPT, return_tensors="pt")


def _converted_outputs(folder, inputs, dtype) -> Outputs:
    from transformers import Sam3Model

    model = Sam3Model.from_pretrained(folder, dtype=dtype).eval()
    pad_box = torch.tensor([[[0.5, 0.5, 0.1, 0.1]]]), torch.tensor([[-10]])
    with torch.inference_mode():
        out = model(pixel_values=inputs["pixel_values"].to(dtype), input_ids=inputs["input_ids"],
                    attention_mask=inputs["attention_mask"], input_boxes=pad_box[0].to(dtype),
                    input_boxes_labels=pad_box[1])
    return Outputs(*(t.float() for t in (out.pred_masks, out.pred_boxes, out.pred_logits, out.presence_logits,
                                          out.semantic_seg)))


def _assert_metas_outputs(ours: Outputs, reference: Outputs) -> None:
    """Per query: logits and presence within 1e-3, boxes 1e-4, mask IoU >= 0.999 per pair."""
    assert (ours.pred_logits - reference.pred_logits).abs().max() <= 1e-3
    assert (ours.presence_logits - reference.presence_logits).abs().max() <= 1e-3
    assert (ours.pred_boxes - reference.pred_boxes).abs().max() <= 1e-4
    for pair in range(len(ours.pred_masks)):
        ious = parity._mask_ious((ours.pred_masks[pair] > 0).numpy(), (reference.pred_masks[pair] > 0).numpy())
        assert len(ious) == 20 and ious.mean() >= 0.999, (pair, ious.mean())


def _result(processor, outputs: Outputs, size) -> Result:
    """Every query kept (threshold 0), as the parity gate compares them."""
    found = processor.post_process_instance_segmentation(outputs, threshold=0.0, mask_threshold=0.5,
                                                         target_sizes=[size])[0]
    return Result("chelsea", [PROMPT], found["masks"].bool().numpy(), found["boxes"].numpy().astype(np.float32),
                  found["scores"].numpy().astype(np.float32), [PROMPT] * len(found["scores"]),
                  np.zeros(size, np.uint16))


def test_fp32_conversion_gives_metas_raw_outputs(meta_model, meta_pt, photo_inputs, tmp_path):
    processor, inputs = photo_inputs
    reference = raw_outputs(meta_model, inputs["pixel_values"], PROMPT)
    convert.to_transformers_dir(source=meta_pt, output=tmp_path / "hf")
    _assert_metas_outputs(_converted_outputs(tmp_path / "hf", inputs, torch.float32), reference)


def test_torch_core_decodes_a_text_prompt_as_metas_model_does(meta_model, meta_pt, photo_inputs, tmp_path):
    """TorchCore's three parts (what predict, bench, the gate and the ONNX export run), two photos with
    a prompt each, against Meta's model on the same weights."""
    from transformers import Sam3Model

    processor, _ = photo_inputs
    prompts = ["cat", "person"]
    pixels = processor.image_processor(images=[data.chelsea(), data.astronaut()], return_tensors="pt").pixel_values
    text = processor.tokenizer(prompts, padding="max_length", max_length=32, truncation=True, return_tensors="pt")
    convert.to_transformers_dir(source=meta_pt, output=tmp_path / "hf")
    core = TorchCore(Sam3Model.from_pretrained(tmp_path / "hf", dtype=torch.float32))
    ours = core.decode(core.encode_image(pixels), core.encode_text(text.input_ids, text.attention_mask),
                       text.attention_mask)
    _assert_metas_outputs(ours, raw_outputs(meta_model, pixels, prompts))


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_conversions_pass_the_gate_against_metas_fp32(meta_model, meta_pt, photo_inputs, tmp_path,
                                                                     precision):
    processor, inputs = photo_inputs
    size = data.chelsea().shape[:2]
    reference = _result(processor, raw_outputs(meta_model, inputs["pixel_values"], PROMPT), size)
    convert.to_transformers_dir(source=meta_pt, output=tmp_path / precision, precision=precision)
    candidate = _result(processor, _converted_outputs(tmp_path / precision, inputs, convert.DTYPES[precision]), size)
    report = parity.compare_results([reference], [candidate])
    assert report.instances == 20 and report.passed, report.to_json()
