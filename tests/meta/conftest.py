"""Meta's tiny model (its own classes at the tiny preset's sizes, seeded) and its flat sam3.pt, once per module."""

import pytest
import torch

from sam3ops.meta.package import build_image_model


@pytest.fixture(scope="module")
def meta_model():
    return build_image_model(size="tiny", seed=0)


@pytest.fixture(scope="module")
def meta_pt(meta_model, tmp_path_factory):
    """Meta's layout as on the hub: one flat dict of detector.* keys (plus a tracker.* key, as there)."""
    path = tmp_path_factory.mktemp("meta") / "sam3.pt"
    state = {"detector." + name: tensor for name, tensor in meta_model.state_dict().items()}
    torch.save({**state, "tracker.maskmem_tpos_enc": torch.ones(7, 1, 1, 4)}, path)
    return path
