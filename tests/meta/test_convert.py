"""Meta's sam3.pt <-> the transformers layout: lossless round trip, the same outputs, bad files refused."""

import pickle

import pytest
import torch

from sam3ops.meta import convert
from sam3ops.meta.files import MetaCheckpointError


def _tensors(path):
    return torch.load(path, weights_only=True)


def test_fp32_round_trip_gives_back_every_tensor_bit_for_bit(meta_pt, tmp_path):
    hf = convert.to_transformers_dir(source=meta_pt, output=tmp_path / "hf")
    back = convert.to_meta_dir(source=tmp_path / "hf", output=tmp_path / "meta")
    assert hf.preset == back.preset == "tiny" and sorted(p.name for p in back.output.iterdir()) == [
        "manifest.json", "sam3.pt"]
    before = {k: v for k, v in _tensors(meta_pt).items() if k.startswith("detector.")}
    after = _tensors(tmp_path / "meta" / "sam3.pt")
    assert after.keys() == before.keys()
    # The RoPE tables (freqs_cis) are recomputed on the way back; they too come out identical.
    assert [k for k in before if not (after[k].dtype == before[k].dtype and torch.equal(after[k], before[k]))] == []


def test_a_wrapped_checkpoint_without_tracker_keys_converts_the_same(meta_pt, tmp_path):
    flat = {k: v for k, v in _tensors(meta_pt).items() if k.startswith("detector.")}
    torch.save({"model": flat}, tmp_path / "wrapped.pt")
    convert.to_transformers_dir(source=tmp_path / "wrapped.pt", output=tmp_path / "a")
    convert.to_transformers_dir(source=meta_pt, output=tmp_path / "b")
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()


def test_meta_layout_from_transformers_loads_in_metas_builder_with_no_missing_keys(meta_pt, tmp_path, capfd):
    from sam3ops.meta.package import build_image_model

    convert.to_transformers_dir(source=meta_pt, output=tmp_path / "hf")
    (tmp_path / "hf" / "meta_only.safetensors").unlink()  # as from the hub: nothing set aside
    for precision in ("fp16", "bf16"):
        out = convert.to_meta_dir(source=tmp_path / "hf", output=tmp_path / precision, precision=precision)
        build_image_model(size="tiny", checkpoint=out.output / "sam3.pt")  # Meta's own _load_checkpoint
        assert "missing" not in capfd.readouterr().out  # Meta prints the missing keys it found
        dtypes = {v.dtype for v in _tensors(out.output / "sam3.pt").values()}
        assert dtypes == {convert.DTYPES[precision], torch.complex64}


def _untouched(folder):
    return not folder.exists()


def test_not_sam3_names_the_first_missing_keys(tmp_path):
    torch.save({"detector.backbone.weight": torch.zeros(2)}, tmp_path / "x.pt")
    with pytest.raises(MetaCheckpointError, match=r"not a SAM3 image-model checkpoint: \d+ tensors missing, "
                                                  r"first detector\.backbone\.language_backbone"):
        convert.to_transformers_dir(source=tmp_path / "x.pt", output=tmp_path / "out")
    assert _untouched(tmp_path / "out")


class Settings:
    """A Python object in a checkpoint: loading it needs full unpickling."""


def test_a_file_that_needs_full_unpickling_is_refused(tmp_path):
    torch.save({"detector.x": torch.zeros(1), "config": Settings()}, tmp_path / "obj.pt", pickle_module=pickle)
    with pytest.raises(MetaCheckpointError, match="needs full unpickling.*refused"):
        convert.to_transformers_dir(source=tmp_path / "obj.pt", output=tmp_path / "out")
    assert _untouched(tmp_path / "out")


def test_a_truncated_file_is_refused(meta_pt, tmp_path):
    (tmp_path / "cut.pt").write_bytes(meta_pt.read_bytes()[: meta_pt.stat().st_size // 2])
    with pytest.raises(MetaCheckpointError, match="not a readable PyTorch checkpoint \\(truncated or corrupt"):
        convert.to_meta_dir(source=tmp_path / "cut.pt", output=tmp_path / "out")
    assert _untouched(tmp_path / "out")


def test_a_tracker_only_checkpoint_is_refused(tmp_path):
    torch.save({"tracker.sam_mask_decoder.weight": torch.zeros(2)}, tmp_path / "tracker.pt")
    with pytest.raises(MetaCheckpointError, match=r"holds only the video tracker \(tracker\.\* keys\)"):
        convert.to_transformers_dir(source=tmp_path / "tracker.pt", output=tmp_path / "out")
    assert _untouched(tmp_path / "out")


@pytest.mark.slow
def test_convert_stage_takes_metas_pt_and_writes_metas_layout(meta_pt, tmp_path):
    """The seed's command on a tiny sam3.pt, then the converted folder back to Meta's layout: both gated."""
    from sam3ops.convert.stage import convert_stage

    first = convert_stage(input_dir=str(meta_pt), format="fp16", output=str(tmp_path / "fp16"),
                          parity_images=("chelsea",), parity_prompts=("cat",)).raise_for_status()
    assert first.outputs.passed and (tmp_path / "fp16" / "model.safetensors").is_file()
    second = convert_stage(input_dir=str(meta_pt), format="bf16", layout="meta", output=str(tmp_path / "meta"),
                           parity_images=("chelsea",), parity_prompts=("cat",)).raise_for_status()
    assert second.outputs.passed and sorted(p.name for p in (tmp_path / "meta").iterdir()) == [
        "manifest.json", "sam3.pt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the temporary folders are gone


def test_stages_tell_a_meta_folder_from_a_transformers_one(meta_pt, tmp_path):
    from sam3ops.checkpoint.kinds import check_weights_dir, layout_of
    from sam3ops.errors import WeightsError

    convert.to_transformers_dir(source=meta_pt, output=tmp_path / "hf")
    convert.to_meta_dir(source=meta_pt, output=tmp_path / "meta", precision="fp16")
    assert (layout_of(tmp_path / "hf"), layout_of(tmp_path / "meta")) == ("transformers", "meta")
    with pytest.raises(WeightsError, match="holds Meta's sam3.pt, not the transformers layout") as caught:
        check_weights_dir(tmp_path / "meta")  # what predict, benchmark and the gate call first
    assert "sam3ops convert --input" in caught.value.hint
