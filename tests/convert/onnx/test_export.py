"""ONNX export of the three graphs: checker, ONNX Runtime parity, dynamic batch, the tracked stage."""

import subprocess

import mlflow
import numpy as np
import onnx
import pytest
import torch

from sam3ops.convert.onnx.export import GRAPHS, export_onnx
from sam3ops.errors import UsageError
from sam3ops.inference import Segmenter, TorchCore
from sam3ops.inference.onnx_core import OnnxCore
from sam3ops.predict.samples import sample_image
from tests.conftest import REPO_ROOT, subprocess_env
from tests.support.cli import run_cli
from tests.support.registry import logged_weights


@pytest.fixture(scope="module")
def onnx_dir(tiny_onnx):
    return tiny_onnx  # exported once per session (conftest)


def test_graphs_pass_checker_with_dynamic_batch(onnx_dir):
    for name in GRAPHS:
        model = onnx.load(str(onnx_dir / name))
        onnx.checker.check_model(model, full_check=True)
        assert model.opset_import[0].version >= 17
        for value in [*model.graph.input, *model.graph.output]:
            assert value.type.tensor_type.shape.dim[0].dim_param == "batch", (name, value.name)


@pytest.mark.parametrize("batch", [1, 3])
def test_onnx_runtime_matches_torch_per_part(onnx_dir, tiny_weights, batch):
    from transformers import Sam3Model, Sam3Processor

    torch_core = TorchCore(Sam3Model.from_pretrained(tiny_weights))
    onnx_core = OnnxCore(onnx_dir)
    processor = Sam3Processor.from_pretrained(tiny_weights)
    photos = [sample_image(n) for n in ("astronaut", "chelsea", "coffee")][:batch]
    pixels = processor.image_processor(images=photos, return_tensors="pt").pixel_values
    text = processor.tokenizer(["person", "cat", "white mug on a table"][:batch], padding="max_length",
                               max_length=32, return_tensors="pt")
    for a, b in zip(torch_core.encode_image(pixels), onnx_core.encode_image(pixels)):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
    ta = torch_core.encode_text(text.input_ids, text.attention_mask)
    tb = onnx_core.encode_text(text.input_ids, text.attention_mask)
    torch.testing.assert_close(tb, ta, rtol=1e-4, atol=1e-4)
    vision = torch_core.encode_image(pixels)
    da = torch_core.decode(vision, ta, text.attention_mask)
    db = onnx_core.decode(vision, ta, text.attention_mask)
    for name in ("pred_boxes", "pred_logits", "presence_logits"):
        torch.testing.assert_close(getattr(db, name), getattr(da, name), rtol=1e-3, atol=1e-3)
    assert db.pred_masks.shape == da.pred_masks.shape and db.semantic_seg.shape == da.semantic_seg.shape


def test_the_exports_box_encoding_stand_in_changes_no_output(tiny_weights):
    """While the decoder is traced, the box encoding (its roi_align would pin the batch) gives zeros for
    the padding box: the decoder's outputs are the same, because that box's slot never reaches them."""
    from transformers import Sam3Model, Sam3Processor

    from sam3ops.convert.onnx.export import traceable_geometry_encoder

    core = TorchCore(Sam3Model.from_pretrained(tiny_weights))
    processor = Sam3Processor.from_pretrained(tiny_weights)
    pixels = processor.image_processor(images=[sample_image("chelsea")] * 2, return_tensors="pt").pixel_values
    text = processor.tokenizer(["cat", "person"], padding="max_length", max_length=32, return_tensors="pt")
    vision, features = core.encode_image(pixels), core.encode_text(text.input_ids, text.attention_mask)
    real = core.decode(vision, features, text.attention_mask)
    with traceable_geometry_encoder():
        stood_in = core.decode(vision, features, text.attention_mask)
    for name in real._fields:
        torch.testing.assert_close(getattr(stood_in, name), getattr(real, name), rtol=0, atol=0)


def test_the_box_encoding_stand_in_refuses_real_boxes():
    from types import SimpleNamespace

    from sam3ops.convert.onnx.export import _padding_box_embedding

    encoder = SimpleNamespace(hidden_size=4)
    with pytest.raises(ValueError, match="one padding box per pair"):
        _padding_box_embedding(encoder, torch.zeros(1, 2, 4), torch.ones(1, 2), torch.ones(1, 2),
                               torch.zeros(1, 4, 8, 8))


def test_segmenter_runs_the_onnx_folder(onnx_dir, tiny_weights):
    photo = sample_image("chelsea")
    reference = Segmenter.from_dir(tiny_weights, score_threshold=0.0).segment([photo], ["cat"])[0]
    converted = Segmenter.from_dir(onnx_dir, score_threshold=0.0)
    assert type(converted.core).__name__ == "OnnxCore"
    result = converted.segment([photo], ["cat"])[0]
    assert np.abs(reference.scores - result.scores).max() < 1e-4 and (reference.masks == result.masks).mean() > 0.999


def test_old_opset_and_non_empty_output(tiny_weights, tmp_path):
    with pytest.raises(UsageError, match="opset 13 is too old"):
        export_onnx(source=tiny_weights, output=tmp_path / "o", opset=13)
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "x").write_text("keep")
    with pytest.raises(UsageError, match="is not empty"):
        export_onnx(source=tiny_weights, output=tmp_path / "o")


def test_onnx_requires_gpu_build_for_cuda(onnx_dir):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(UsageError, match="ONNX on cuda"):
        OnnxCore(onnx_dir, device="cuda")


@pytest.mark.slow
def test_mlflow_run_convert_onnx_entry_point(tmp_path, tiny_weights):
    """`mlflow run . -e convert -P format=onnx --env-manager local` on the tiny preset."""
    done = subprocess.run(
        ["mlflow", "run", str(REPO_ROOT), "-e", "convert", "--env-manager", "local", "--experiment-name",
         "sam3-convert", "-P", f"input={tiny_weights}", "-P", "format=onnx", "-P", f"output={tmp_path / 'onnx'}"],
        env=subprocess_env(), capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run = mlflow.search_runs(experiment_names=["sam3-convert"], output_format="list")[0]
    assert run.info.status == "FINISHED" and run.data.tags["parity"] == "pass"
    assert run.data.params["format"] == "onnx" and run.data.params["opset"] == "17"
    assert run.data.tags["trt_ready"] == "true" and run.data.metrics["trt_unsupported_ops"] == 0
    assert run.data.metrics["parity_mask_iou"] > 0.99
    listed = logged_weights(run.info.run_id)  # the run's files, in the logged model it made
    assert {"weights/vision.onnx", "weights/text.onnx", "weights/decoder.onnx", "weights/tokenizer.json"} <= listed


def test_predict_on_onnx_weights(capsys, tmp_path, onnx_dir):
    from sam3ops.predict.samples import write_samples

    write_samples(tmp_path / "photos", ["chelsea"])
    code, out, err = run_cli(capsys, "predict", str(tmp_path / "photos"), "--weights", str(onnx_dir),
                             "--prompt", "cat", "--output", "out")
    assert code == 0, err
    assert (tmp_path / "out" / "chelsea" / "overlay.png").is_file()
