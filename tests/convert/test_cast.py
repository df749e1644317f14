"""fp16 / bf16 casts of a weights folder: streamed, verified, loadable, nothing partial left."""

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors import safe_open

from sam3ops.checkpoint.manifest import Manifest, file_hashes
from sam3ops.convert import cast
from sam3ops.errors import UsageError, WeightsError
from sam3ops.inference import Segmenter
from sam3ops.predict.samples import sample_image


@pytest.mark.parametrize("precision, dtype", [("fp16", torch.float16), ("bf16", torch.bfloat16)])
def test_round_trip_loads_and_segments(tmp_path, tiny_weights, precision, dtype):
    result = cast.cast_weights(source=tiny_weights, output=tmp_path / precision, precision=precision)
    out = result.output
    assert (out / "model.safetensors").stat().st_size < 0.6 * (tiny_weights / "model.safetensors").stat().st_size
    with safe_open(str(out / "model.safetensors"), framework="pt") as converted, \
            safe_open(str(tiny_weights / "model.safetensors"), framework="pt") as original:
        assert converted.offset_keys() == original.offset_keys()
        assert converted.metadata() == original.metadata()
        for name in original.offset_keys():
            a, b = original.get_tensor(name), converted.get_tensor(name)
            assert b.dtype == (dtype if a.is_floating_point() else a.dtype) and b.shape == a.shape
            assert torch.equal(a.to(b.dtype), b)
    assert json.loads((out / "config.json").read_text())["dtype"] == str(dtype).removeprefix("torch.")
    manifest = Manifest.read(out)
    assert manifest.random and manifest.commit == Manifest.read(tiny_weights).commit and not manifest.problems(out)

    photo = sample_image("chelsea")
    reference = Segmenter.from_dir(tiny_weights, score_threshold=0.0).segment([photo], ["cat"])[0]
    converted = Segmenter.from_dir(out, precision=precision, score_threshold=0.0).segment([photo], ["cat"])[0]
    assert np.abs(reference.scores - converted.scores).max() < 0.02


def test_refuses_non_empty_output_unless_overwrite(tmp_path, tiny_weights):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="is not empty"):
        cast.cast_weights(source=tiny_weights, output=tmp_path / "out", precision="fp16")
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"
    cast.cast_weights(source=tiny_weights, output=tmp_path / "out", precision="fp16", overwrite=True)
    assert not (tmp_path / "out" / "keep.txt").exists()


def test_bad_inputs_leave_nothing(tmp_path, tiny_weights):
    with pytest.raises(WeightsError, match="not found"):
        cast.cast_weights(source=tmp_path / "missing", output=tmp_path / "out", precision="fp16")
    with pytest.raises(UsageError, match="cannot cast to 'int8'"):
        cast.cast_weights(source=tiny_weights, output=tmp_path / "out", precision="int8")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_weights, broken)
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        cast.cast_weights(source=broken, output=tmp_path / "out", precision="fp16")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_disk_full_mid_write_leaves_nothing(tmp_path, tiny_weights, monkeypatch):
    real = cast.cast_file

    def fills_up(source, destination, target):
        real(source, destination, target)  # the file is there, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cast, "cast_file", fills_up)
    with pytest.raises(OSError):
        cast.cast_weights(source=tiny_weights, output=tmp_path / "out", precision="fp16")
    assert list(tmp_path.iterdir()) == [] or all(p.name == "mlflow.db" for p in tmp_path.iterdir())


def test_big_tensors_stream_in_row_blocks_and_corruption_is_caught(tmp_path, tiny_weights, monkeypatch):
    monkeypatch.setattr(cast, "BLOCK_BYTES", 4096)  # force row blocks and reopenings on the tiny model
    monkeypatch.setattr(cast, "CHUNK_BYTES", 64 * 1024)
    infos, _ = cast.read_layout(tiny_weights / "model.safetensors", "fp16")
    assert sum(1 for _, block, _ in cast.read_plan(infos) if block is not None) > 10
    size, crcs, sha256 = cast.cast_file(tiny_weights / "model.safetensors", tmp_path / "m.safetensors", "fp16")
    assert sha256 == file_hashes(tmp_path / "m.safetensors")[0] and size == (tmp_path / "m.safetensors").stat().st_size
    cast.verify_cast(tiny_weights / "model.safetensors", tmp_path / "m.safetensors", "fp16", crcs)
    with safe_open(str(tmp_path / "m.safetensors"), framework="pt") as converted, \
            safe_open(str(tiny_weights / "model.safetensors"), framework="pt") as original:
        for name in original.offset_keys():
            half = converted.get_tensor(name)
            assert torch.equal(original.get_tensor(name).to(half.dtype), half)
    data = bytearray((tmp_path / "m.safetensors").read_bytes())
    data[-100] ^= 0xFF  # one flipped byte in the last tensor
    (tmp_path / "m.safetensors").write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="read back differently"):
        cast.verify_cast(tiny_weights / "model.safetensors", tmp_path / "m.safetensors", "fp16", crcs)
