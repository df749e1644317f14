"""init presets: architecture-true configs, the hub's layout, seeded weights, nothing half-written."""

import json

import pytest
import torch

from sam3ops.checkpoint.manifest import Manifest
from sam3ops.errors import UsageError
from sam3ops.weights import presets

HUB_LAYOUT = {"config.json", "model.safetensors", "processor_config.json", "tokenizer.json",
              "tokenizer_config.json", "vocab.json", "merges.txt", "manifest.json"}


def test_full_config_is_real_sam3():
    from transformers import Sam3Model

    config = presets.build_config("full")
    assert config.vision_config.backbone_config.image_size == 1008
    assert config.text_config.vocab_size == 49408 and config.text_config.max_position_embeddings == 32
    with torch.device("meta"):  # count parameters without allocating 3.4 GB
        model = Sam3Model(config)
    total = sum(p.numel() for p in model.parameters())
    assert 835e6 < total < 845e6, total
    processor = presets.build_processor(config)
    assert processor.image_processor.size["height"] == 1008


def test_tiny_layout_manifest_and_random_flag(tiny_weights):
    assert {p.name for p in tiny_weights.iterdir()} == HUB_LAYOUT
    manifest = Manifest.read(tiny_weights)
    assert manifest.random is True and manifest.preset == "tiny" and manifest.seed == 0
    assert len(manifest.commit) == 40 and manifest.repo_id.startswith("sam3ops/random-")
    assert {f.path for f in manifest.files} == HUB_LAYOUT - {"manifest.json"}
    assert manifest.problems(tiny_weights) == []
    assert (tiny_weights / "model.safetensors").stat().st_size < 20e6  # "a few MB"
    assert json.loads((tiny_weights / "config.json").read_text())["model_type"] == "sam3"


def test_tiny_loads_and_segments_a_real_photo(tiny_weights):
    from PIL import Image
    from skimage import data
    from transformers import Sam3Model, Sam3Processor

    model = Sam3Model.from_pretrained(tiny_weights).eval()
    processor = Sam3Processor.from_pretrained(tiny_weights)
    inputs = processor(images=Image.fromarray(data.astronaut()), text="person", return_tensors="pt")
    assert inputs["pixel_values"].shape[-2:] == (224, 224)
    assert inputs["input_ids"].shape[-1] == 32
    with torch.no_grad():
        out = model(**inputs)
    assert out.pred_masks.shape[:2] == (1, 20) and torch.isfinite(out.pred_masks).all()


def test_same_seed_same_weights_other_seed_differs(tmp_path, tiny_weights):
    again = presets.init_weights(preset="tiny", output=tmp_path / "again", seed=0)
    other = presets.init_weights(preset="tiny", output=tmp_path / "other", seed=1)
    assert again.manifest.commit == Manifest.read(tiny_weights).commit
    assert other.manifest.commit != again.manifest.commit


def test_rerun_reuses_intact_folder_and_refuses_foreign_one(tmp_path):
    first = presets.init_weights(preset="tiny", output=tmp_path / "w")
    assert not first.reused
    assert presets.init_weights(preset="tiny", output=tmp_path / "w").reused
    with pytest.raises(UsageError, match="already holds other files"):
        presets.init_weights(preset="tiny", output=tmp_path / "w", seed=5)
    assert presets.init_weights(preset="tiny", output=tmp_path / "w", seed=5, force=True).manifest.seed == 5


def test_interrupted_init_leaves_nothing(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("transformers.Sam3Processor.save_pretrained", fail)
    with pytest.raises(OSError):
        presets.init_weights(preset="tiny", output=tmp_path / "w")
    assert list(tmp_path.iterdir()) == [] or all(p.name == "mlflow.db" for p in tmp_path.iterdir())


def test_unknown_preset():
    with pytest.raises(UsageError, match="unknown preset 'huge'"):
        presets.build_config("huge")
