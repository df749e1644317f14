"""Weights folders from Meta's ``sam3.pt`` and back: the transformers layout or Meta's, at fp32/fp16/bf16.

- :func:`to_transformers_dir`: Meta's checkpoint (a ``.pt`` file or a Meta-layout folder) -> config,
  ``model.safetensors`` (+ ``meta_only.safetensors``, what transformers has no place for), processor
  and tokenizer files (this project's builders, :mod:`sam3ops.weights.presets`), ``manifest.json``.
- :func:`to_meta_dir`: either kind of folder (or a ``.pt`` file) -> ``sam3.pt`` + ``manifest.json``.

The transformers config is not stored in Meta's checkpoint: it is inferred from the tensors'
shapes, by matching them against each preset's (:data:`sam3ops.weights.config.PRESETS`); the preset
found is recorded in the manifest. A checkpoint whose shapes match no preset is refused.
Folders are built beside their destination and renamed into place: nothing half-written remains.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from sam3ops.checkpoint import manifest as manifest_lib
from sam3ops.checkpoint.atomic import staged_folder
from sam3ops.checkpoint.kinds import is_meta_dir, require_empty
from sam3ops.checkpoint.layout import META_CHECKPOINT, META_ONLY
from sam3ops.meta import mapping
from sam3ops.meta.files import (
    MetaCheckpointError,
    load_image_state,
    read_safetensors,
    write_meta_checkpoint,
    write_safetensors,
)

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class MetaConversion:
    """What a conversion wrote: the folder, its layout and precision, the preset, bytes of weights."""

    output: Path
    layout: str
    precision: str
    preset: str
    bytes_written: int
    manifest: manifest_lib.Manifest


def is_meta_source(source: Path) -> bool:
    """True for Meta's layout: a ``.pt``/``.pth`` file, or a folder holding ``sam3.pt`` and no config."""
    source = Path(source)
    return (source.is_file() and source.suffix in (".pt", ".pth")) or (source.is_dir() and is_meta_dir(source))


def infer_preset(image_state: dict[str, torch.Tensor], where: Path) -> str:
    """The preset whose architecture has exactly these tensors and shapes.

    Raises:
        MetaCheckpointError: tensors missing (the first few named) or sizes no preset has.
    """
    from sam3ops.weights.config import PRESETS
    from sam3ops.weights.presets import build_config

    found = {name: tuple(tensor.shape) for name, tensor in image_state.items()}
    best = None
    for preset in PRESETS:
        expected = mapping.expected_shapes(build_config(preset))
        missing = sorted(set(expected) - set(found))
        wrong = [name for name in expected if name in found and found[name] != expected[name]]
        if not missing and not wrong:
            return preset
        if best is None or len(missing) < len(best[1]):
            best = (preset, missing, wrong)
    preset, missing, wrong = best
    if missing:
        raise MetaCheckpointError(f"{where} is not a SAM3 image-model checkpoint: {len(missing)} tensors missing, "
                                  f"first {', '.join(mapping.META_PREFIX + m for m in missing[:3])}")
    raise MetaCheckpointError(f"{where}: tensor sizes match no preset ({', '.join(PRESETS)}); closest is {preset}, "
                              f"first differing: {mapping.META_PREFIX}{wrong[0]}")


def _meta_file(source: Path) -> Path:
    return Path(source) / META_CHECKPOINT if Path(source).is_dir() else Path(source)


def _identity(source: Path, preset: str) -> manifest_lib.Manifest:
    """The source folder's identity when it has a manifest; else one made from the file's sha256."""
    folder = Path(source) if Path(source).is_dir() else Path(source).parent
    if (folder / manifest_lib.MANIFEST_NAME).is_file():
        found = manifest_lib.Manifest.read(folder)
        return manifest_lib.Manifest(repo_id=found.repo_id, revision=found.revision, commit=found.commit,
                                     random=found.random, preset=found.preset or preset, seed=found.seed)
    sha256, _ = manifest_lib.file_hashes(_meta_file(source))
    return manifest_lib.Manifest(repo_id="local/" + _meta_file(source).name, revision="file", commit=sha256[:40],
                                 random=False, preset=preset)


def to_transformers_dir(*, source: Path, output: Path, precision: str = "fp32",
                        overwrite: bool = False) -> MetaConversion:
    """Write Meta's checkpoint ``source`` in the transformers layout at ``precision`` into ``output``.

    Raises:
        MetaCheckpointError: see :func:`sam3ops.meta.files.load_image_state` and :func:`infer_preset`.
        UsageError: ``output`` is not empty and ``overwrite`` is False.
    """
    from sam3ops.weights import tokenizer as tokenizer_lib
    from sam3ops.weights.presets import build_config, build_processor

    output = Path(output)
    require_empty(output, overwrite=overwrite)
    image_state = load_image_state(_meta_file(source))
    preset = infer_preset(image_state, _meta_file(source))
    identity = _identity(source, preset)
    hf, meta_only = mapping.to_transformers(image_state)
    with staged_folder(output, "meta-import") as staging:
        known = {"model.safetensors": write_safetensors(staging / "model.safetensors", hf, dtype=DTYPES[precision]),
                 META_ONLY: write_safetensors(staging / META_ONLY, meta_only, dtype=DTYPES[precision])}
        del hf, meta_only, image_state
        config = build_config(preset)
        config.architectures = ["Sam3Model"]
        config.save_pretrained(staging)
        data = json.loads((staging / "config.json").read_text())
        data["dtype"] = str(DTYPES[precision]).removeprefix("torch.")
        (staging / "config.json").write_text(json.dumps(data, indent=2) + "\n")
        build_processor(config).save_pretrained(staging)
        tokenizer_lib.write_vocab_files(*tokenizer_lib.clip_vocab_and_merges(), staging)
        manifest = identity.with_files(manifest_lib.entries_for(
            staging, [p.name for p in staging.iterdir() if p.is_file()], known=known))
        manifest.write(staging)
    written = (output / "model.safetensors").stat().st_size + (output / META_ONLY).stat().st_size
    return MetaConversion(output, "transformers", precision, preset, written, manifest)


def _source_state(source: Path) -> tuple[dict[str, torch.Tensor], str, manifest_lib.Manifest]:
    """Meta's image-model state of either kind of source, its preset and identity."""
    from transformers import Sam3Config

    from sam3ops.weights.presets import build_config

    source = Path(source)
    if is_meta_source(source):
        state = load_image_state(_meta_file(source))
        preset = infer_preset(state, _meta_file(source))
        return state, preset, _identity(source, preset)
    from sam3ops.checkpoint.kinds import check_weights_dir

    folder = check_weights_dir(source)
    hf = read_safetensors(folder / "model.safetensors")
    meta_only = read_safetensors(folder / META_ONLY) if (folder / META_ONLY).is_file() else None
    config = Sam3Config.from_pretrained(folder)
    state = mapping.to_meta(hf, config, meta_only)
    preset = infer_preset(state, folder)
    if mapping.expected_shapes(build_config(preset)).keys() != state.keys():
        raise MetaCheckpointError(f"{folder} holds tensors Meta's image model has no place for")
    return state, preset, _identity(folder, preset)


def to_meta_dir(*, source: Path, output: Path, precision: str = "fp32", overwrite: bool = False) -> MetaConversion:
    """Write ``source`` (transformers folder, Meta folder or ``.pt`` file) as Meta's ``sam3.pt`` into ``output``.

    The result loads with Meta's ``build_sam3_image_model(checkpoint_path=output/"sam3.pt")`` and
    no missing keys. Without ``meta_only.safetensors`` (a folder that started in transformers)
    the ViT's CLS position slot and the point-prompt layers are zeros (see :mod:`sam3ops.meta.mapping`).

    Raises:
        MetaCheckpointError, WeightsError: an unreadable source; UsageError: ``output`` not empty.
    """
    output = Path(output)
    require_empty(output, overwrite=overwrite)
    state, preset, identity = _source_state(source)
    with staged_folder(output, "meta-export") as staging:
        write_meta_checkpoint(staging / META_CHECKPOINT, state, dtype=DTYPES[precision])
        del state
        manifest = identity.with_files(manifest_lib.entries_for(staging, [META_CHECKPOINT]))
        manifest.write(staging)
    return MetaConversion(output, "meta", precision, preset, (output / META_CHECKPOINT).stat().st_size, manifest)
