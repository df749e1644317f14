"""Meta's image-model state dict to transformers' ``Sam3Model`` state dict, and back.

Beyond the names (:mod:`sam3ops.meta.names`) four tensors change on the way:

- fused attention weights (the ViT's ``qkv``, every ``in_proj_*``) split into q/k/v thirds (and
  are concatenated again on the way back);
- the ViT position embedding loses its CLS slot (577 -> 576 at full size);
- CLIP's ``text_projection`` is stored transposed by Meta;
- the RoPE tables (``freqs_cis``, complex) are not stored by transformers, which computes its own:
  on the way back they are computed exactly as Meta's ``ViT`` computes them at build time.

What transformers has no place for (the CLS slot, the point-prompt layers, anything unknown) is
returned separately as Meta-only tensors, so a Meta -> transformers -> Meta round trip gives back
every tensor bit for bit. Without them (a checkpoint that started in transformers) the CLS slot
and the point-prompt layers are written as zeros: neither is read by an image + text or box prompt.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from sam3ops.meta import names

META_PREFIX = "detector."  # Meta's loader keeps keys containing it and strips it
POS_EMBED = names.VIT + "pos_embed"
POS_EMBED_CLS = POS_EMBED + ".cls"  # the CLS slot, as a Meta-only tensor
TEXT_PROJECTION = names.TEXT + "text_projection"


def to_transformers(meta: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``(transformers state, Meta-only tensors)`` for Meta's image-model state (``detector.`` stripped).

    Tensors are views of ``meta`` where they can be (a memory-mapped source stays on disk); the
    RoPE tables are dropped (transformers computes them).
    """
    hf: dict[str, torch.Tensor] = {}
    meta_only: dict[str, torch.Tensor] = {}
    for name, tensor in meta.items():
        targets = names.to_transformers(name)
        if name.endswith(names.ROPE_SUFFIX):
            continue
        if not targets:
            meta_only[name] = tensor
        elif name == POS_EMBED:
            hf[targets[0]], meta_only[POS_EMBED_CLS] = tensor[:, 1:], tensor[:, :1]
        elif name == TEXT_PROJECTION:
            hf[targets[0]] = tensor.t().contiguous()
        elif len(targets) == 3:
            hf.update(zip(targets, tensor.chunk(3, dim=0)))
        else:
            hf[targets[0]] = tensor
    return hf, meta_only


def to_meta(hf: Mapping[str, torch.Tensor], config, meta_only: Mapping[str, torch.Tensor] | None = None
            ) -> dict[str, torch.Tensor]:
    """Meta's image-model state (no ``detector.`` prefix) for transformers' state ``hf`` of ``config``.

    Args:
        hf: a ``Sam3Model`` state dict (tensors may live on the ``meta`` device: shapes only).
        config: its ``Sam3Config`` (RoPE tables and point-layer sizes come from it).
        meta_only: what :func:`to_transformers` set aside; None writes the CLS slot and the
            point-prompt layers as zeros.
    """
    meta_only = dict(meta_only or {})
    hf_names = set(hf)
    out: dict[str, torch.Tensor] = {}
    thirds: dict[str, dict[int, torch.Tensor]] = {}
    for name, tensor in hf.items():
        found = names.to_meta(name, hf_names)
        if found is None:
            continue  # transformers-only (none in transformers 5's Sam3Model)
        meta_name, part = found
        if part is None:
            out[meta_name] = tensor
        else:
            thirds.setdefault(meta_name, {})[part] = tensor
    for meta_name, parts in thirds.items():
        out[meta_name] = torch.cat([parts[0], parts[1], parts[2]], dim=0)
    reference = out[POS_EMBED]
    cls = meta_only.pop(POS_EMBED_CLS, None)
    if cls is None:
        cls = torch.zeros((1, 1, reference.shape[-1]), dtype=reference.dtype, device=reference.device)
    out[POS_EMBED] = torch.cat([cls.to(reference.dtype), reference], dim=1)
    out[TEXT_PROJECTION] = out[TEXT_PROJECTION].t().contiguous()
    out.update(_point_layers(config, reference, meta_only))
    out.update(rope_tables(config))
    out.update(meta_only)
    return out


def _point_layers(config, like: torch.Tensor, meta_only: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The geometry encoder's point-prompt layers: set aside ones, else zeros of their shapes."""
    width = config.geometry_encoder_config.hidden_size
    shapes = {"points_direct_project": (width, 2), "points_pool_project": (width, width),
              "points_pos_enc_project": (width, width)}
    layers = {}
    for layer in names.POINT_LAYERS:
        for suffix, shape in (("weight", shapes[layer]), ("bias", (width,))):
            key = f"geometry_encoder.{layer}.{suffix}"
            kept = meta_only.pop(key, None)
            layers[key] = kept if kept is not None else torch.zeros(shape, dtype=like.dtype, device=like.device)
    return layers


def rope_tables(config) -> dict[str, torch.Tensor]:
    """Each ViT block's ``freqs_cis`` as Meta's ``ViT`` builds it (complex64, on the CPU).

    A windowed block covers a ``window_size`` square, a global one the whole token grid, with
    positions scaled so both span the window's range (Meta's ``use_interp_rope`` with the window
    as the pre-training size); the same float32 operations in the same order give the same bits.
    """
    backbone = config.vision_config.backbone_config
    head_dim = backbone.hidden_size // backbone.num_attention_heads
    grid = backbone.image_size // backbone.patch_size
    theta = float(getattr(backbone, "rope_theta", 10000.0))
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 4)[: head_dim // 4].float() / head_dim))
    tables = {}
    for block in range(backbone.num_hidden_layers):
        side = grid if block in backbone.global_attn_indexes else backbone.window_size
        scale = backbone.window_size / side
        t = torch.arange(side * side, dtype=torch.float32)
        t_x = (t % side).float() * scale + 0
        t_y = torch.div(t, side, rounding_mode="floor").float() * scale + 0
        angles_x, angles_y = torch.outer(t_x, freqs), torch.outer(t_y, freqs)
        tables[f"{names.VIT}blocks.{block}{names.ROPE_SUFFIX}"] = torch.cat(
            [torch.polar(torch.ones_like(angles_x), angles_x), torch.polar(torch.ones_like(angles_y), angles_y)],
            dim=-1)
    return tables


def expected_shapes(config) -> dict[str, tuple[int, ...]]:
    """Meta's image-model names and shapes for ``config`` (built on the ``meta`` device: no memory)."""
    from transformers import Sam3Model

    with torch.device("meta"):
        hf = Sam3Model(config).state_dict()
    return {name: tuple(tensor.shape) for name, tensor in to_meta(hf, config).items()}
