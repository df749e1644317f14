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


def write_meta_from_transformers(source: Path, folder: Path) -> Path:
    """``folder`` in Meta's layout holding the weights of the transformers folder ``source``
    (meta-ckpt's mapping, :func:`sam3ops.meta.mapping.to_meta`), with ``source``'s identity."""
    import torch
    from safetensors.torch import load_file
    from transformers import Sam3Config

    from sam3ops.meta.mapping import META_PREFIX, to_meta

    meta = to_meta(load_file(source / "model.safetensors"), Sam3Config.from_pretrained(source))
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({f"{META_PREFIX}{key}": value for key, value in meta.items()}, folder / "sam3.pt")
    Manifest.read(source).with_files(entries_for(folder, ["sam3.pt"])).write(folder)
    return folder
