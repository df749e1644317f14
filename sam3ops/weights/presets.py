"""Architecture-true SAM3 checkpoints with random weights (``sam3ops init``).

``full`` is the real SAM3 configuration (~840 M parameters, 1008x1008 input), for latency and
memory work before gated access is granted; ``tiny`` keeps every part of the architecture at a few
MB and 224x224 for tests and the CPU demo. Both are written in the layout ``download`` produces
(config, safetensors weights, processor and tokenizer files, ``manifest.json``) and marked random
everywhere so nobody mistakes their masks for real output.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from sam3ops.checkpoint import atomic
from sam3ops.checkpoint import manifest as manifest_lib
from sam3ops.checkpoint.atomic import staged_folder
from sam3ops.errors import UsageError
from sam3ops.weights import tokenizer as tokenizer_lib
from sam3ops.weights.config import PRESETS

log = logging.getLogger(__name__)

RANDOM_REPO_PREFIX = "sam3ops/random-"


def _tiny_kwargs() -> dict:
    # 224 px / patch 14 = a 16x16 token grid; the FPN levels are 4x, 2x and 1x that grid, as in the
    # full model (1008 / 14 = 72 -> 288, 144, 72). The text encoder keeps CLIP's real vocabulary
    # and 32-token context so the real tokenizer's ids fit.
    heads_and_sizes = dict(hidden_size=32, num_attention_heads=2, intermediate_size=64)
    return dict(
        vision_config=dict(
            backbone_config=dict(
                model_type="sam3_vit_model",  # needed when the backbone is given as a dict
                num_hidden_layers=2,
                image_size=224,
                pretrain_image_size=224,
                patch_size=14,
                window_size=8,
                global_attn_indexes=[1],
                **heads_and_sizes,
            ),
            fpn_hidden_size=32,
            backbone_feature_sizes=[[64, 64], [32, 32], [16, 16]],
        ),
        text_config=dict(
            model_type="clip_text_model",
            vocab_size=tokenizer_lib.VOCAB_SIZE,
            max_position_embeddings=tokenizer_lib.CONTEXT_LENGTH,
            projection_dim=32,
            num_hidden_layers=2,
            hidden_act="gelu",  # as the full SAM3 (CLIPTextConfig's own default is quick_gelu)
            **heads_and_sizes,
        ),
        geometry_encoder_config=dict(num_layers=1, **heads_and_sizes),
        detr_encoder_config=dict(num_layers=1, **heads_and_sizes),
        detr_decoder_config=dict(num_layers=1, num_queries=20, **heads_and_sizes),
        mask_decoder_config=dict(hidden_size=32, num_attention_heads=2),
    )


def build_config(preset: str):
    """The ``Sam3Config`` of a preset (``tiny`` or ``full``)."""
    from transformers import Sam3Config

    if preset == "full":
        return Sam3Config()
    if preset == "tiny":
        return Sam3Config(**_tiny_kwargs())
    raise UsageError(f"unknown preset {preset!r}", hint=f"choose one of: {', '.join(PRESETS)}")


def build_processor(config):
    """A ``Sam3Processor`` for ``config``: image size and mask size follow the model's input size."""
    from transformers import Sam3ImageProcessor, Sam3Processor

    size = config.vision_config.backbone_config.image_size
    mask_side = config.vision_config.backbone_feature_sizes[0][0]
    image_processor = Sam3ImageProcessor(
        size={"height": size, "width": size}, mask_size={"height": mask_side, "width": mask_side}
    )
    return Sam3Processor(image_processor=image_processor, tokenizer=tokenizer_lib.build_tokenizer())


@dataclass
class InitResult:
    """What ``init_weights`` produced."""

    output: Path
    manifest: manifest_lib.Manifest
    parameters: int
    seconds: float
    reused: bool


def _content_commit(entries: list[manifest_lib.FileEntry]) -> str:
    """A 40-hex identity derived from the files' hashes, standing in for a hub commit sha."""
    digest = hashlib.sha256("".join(f"{e.path}:{e.sha256}\n" for e in entries).encode())
    return digest.hexdigest()[:40]


def _existing(output: Path, preset: str, seed: int) -> manifest_lib.Manifest | None:
    """The manifest of an intact folder holding this very preset and seed, else None."""
    if not (output / manifest_lib.MANIFEST_NAME).is_file():
        return None
    existing = manifest_lib.Manifest.read(output)
    if existing.random and existing.preset == preset and existing.seed == seed and manifest_lib.is_intact(output):
        return existing
    return None


def init_weights(*, preset: str, output: Path, seed: int = 0, force: bool = False) -> InitResult:
    """Write a random-weights SAM3 checkpoint of ``preset`` into ``output``.

    The folder is built beside ``output`` and renamed into place, so an interrupted init leaves
    nothing half-written. The same preset and seed give byte-identical weights; rerunning on a
    folder that already holds them verifies it and returns (``reused=True``).

    Raises:
        UsageError: unknown preset, or ``output`` holds something else and ``force`` is False.
    """
    import torch
    from transformers import Sam3Model

    output = Path(output)
    config = build_config(preset)
    if not force and (found := _existing(output, preset, seed)):
        return InitResult(output, found, 0, 0.0, reused=True)
    if output.exists() and any(output.iterdir()) and not force:
        raise UsageError(
            f"{output} already holds other files", hint="choose another --output, or pass --force to replace it"
        )

    started = time.perf_counter()
    with staged_folder(output, "init") as staging:
        torch.manual_seed(seed)
        log.info("building the %s preset (random weights, seed %d)", preset, seed)
        model = Sam3Model(config).eval()
        parameters = sum(p.numel() for p in model.parameters())
        model.save_pretrained(staging)
        del model  # free the weights before the tokenizer and hashing work
        processor = build_processor(config)
        processor.save_pretrained(staging)
        vocab, merges = tokenizer_lib.clip_vocab_and_merges()
        tokenizer_lib.write_vocab_files(vocab, merges, staging)

        for written in staging.iterdir():  # some writers create owner-only files; use the umask like `cp`
            written.chmod(0o666 & ~atomic.current_umask())
        entries = manifest_lib.entries_for(staging, [p.name for p in staging.iterdir() if p.is_file()])
        manifest = manifest_lib.Manifest(
            repo_id=f"{RANDOM_REPO_PREFIX}{preset}",
            revision=f"seed-{seed}",
            commit=_content_commit([e for e in entries if e.path.endswith(".safetensors")]),
            random=True,
            preset=preset,
            seed=seed,
            files=entries,
        )
        manifest.write(staging)
    return InitResult(output, manifest, parameters, time.perf_counter() - started, reused=False)
