"""A Meta-layout weights folder for tests: Meta's own tiny image model (random weights) as ``sam3.pt``."""

from __future__ import annotations

from pathlib import Path

from sam3ops.checkpoint.manifest import Manifest, entries_for


def write_meta_folder(folder: Path, *, seed: int = 0) -> Path:
    """``folder`` with ``sam3.pt`` (Meta's tiny ``Sam3Image``, ``detector.*`` keys as Meta saves them)
    and ``manifest.json``; returns ``folder``."""
    import torch

    from sam3ops.meta.package import build_image_model

    model = build_image_model(size="tiny", seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({f"detector.{key}": value for key, value in model.state_dict().items()}, folder / "sam3.pt")
    manifest = Manifest(repo_id="meta/sam3-tiny", revision="main", commit=f"meta-tiny-seed{seed}", random=True,
                        preset="tiny", seed=seed)
    manifest.with_files(entries_for(folder, ["sam3.pt"])).write(folder)
    return folder
