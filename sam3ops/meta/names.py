"""Tensor names: Meta's ``Sam3Image`` state dict against transformers' ``Sam3Model``, both ways.

One table of (Meta prefix, transformers prefix, kind), where ``{n}`` stands for a layer number.
The kind says how the rest of the name travels:

- ``same``: unchanged (``weight``, ``bias``, ...);
- ``mha``: a ``torch.nn.MultiheadAttention``: its fused ``in_proj_weight``/``in_proj_bias`` become
  ``q_proj``/``k_proj``/``v_proj`` and ``out_proj`` becomes ``o_proj``;
- ``clip``: the same, but CLIP keeps the name ``out_proj``;
- ``vit``: the ViT's fused ``qkv`` becomes ``q_proj``/``k_proj``/``v_proj`` and ``proj`` becomes ``o_proj``.

Names are facts of the two published implementations (Meta's ``sam3`` 0.1.4, transformers 5);
the tensor changes that go with some of them live in :mod:`sam3ops.meta.mapping`. No torch here.
"""

from __future__ import annotations

import re

VIT = "backbone.vision_backbone.trunk."
TEXT = "backbone.language_backbone.encoder."
NECK = "backbone.vision_backbone.convs.{n}."
HF_NECK = "vision_encoder.neck.fpn_layers.{n}."

RULES: tuple[tuple[str, str, str], ...] = (
    (VIT + "pos_embed", "vision_encoder.backbone.embeddings.position_embeddings", "same"),
    (VIT + "patch_embed.proj.", "vision_encoder.backbone.embeddings.patch_embeddings.projection.", "same"),
    (VIT + "ln_pre.", "vision_encoder.backbone.layer_norm.", "same"),
    (VIT + "blocks.{n}.norm1.", "vision_encoder.backbone.layers.{n}.layer_norm1.", "same"),
    (VIT + "blocks.{n}.norm2.", "vision_encoder.backbone.layers.{n}.layer_norm2.", "same"),
    (VIT + "blocks.{n}.attn.", "vision_encoder.backbone.layers.{n}.attention.", "vit"),
    (VIT + "blocks.{n}.mlp.", "vision_encoder.backbone.layers.{n}.mlp.", "same"),
    # The neck: the 4x level has two transposed convs (0 and 2, a GELU between), the 2x level one.
    (NECK + "dconv_2x2_0.", HF_NECK + "scale_layers.0.", "same"),
    (NECK + "dconv_2x2_1.", HF_NECK + "scale_layers.2.", "same"),
    (NECK + "dconv_2x2.", HF_NECK + "scale_layers.0.", "same"),
    (NECK + "conv_1x1.", HF_NECK + "proj1.", "same"),
    (NECK + "conv_3x3.", HF_NECK + "proj2.", "same"),
    (TEXT + "token_embedding.", "text_encoder.text_model.embeddings.token_embedding.", "same"),
    (TEXT + "positional_embedding", "text_encoder.text_model.embeddings.position_embedding.weight", "same"),
    (TEXT + "ln_final.", "text_encoder.text_model.final_layer_norm.", "same"),
    (TEXT + "text_projection", "text_encoder.text_projection.weight", "same"),
    (TEXT + "transformer.resblocks.{n}.attn.", "text_encoder.text_model.encoder.layers.{n}.self_attn.", "clip"),
    (TEXT + "transformer.resblocks.{n}.ln_1.", "text_encoder.text_model.encoder.layers.{n}.layer_norm1.", "same"),
    (TEXT + "transformer.resblocks.{n}.ln_2.", "text_encoder.text_model.encoder.layers.{n}.layer_norm2.", "same"),
    (TEXT + "transformer.resblocks.{n}.mlp.c_fc.", "text_encoder.text_model.encoder.layers.{n}.mlp.fc1.", "same"),
    (TEXT + "transformer.resblocks.{n}.mlp.c_proj.", "text_encoder.text_model.encoder.layers.{n}.mlp.fc2.", "same"),
    ("backbone.language_backbone.resizer.", "text_projection.", "same"),
    ("geometry_encoder.encode.{n}.self_attn.", "geometry_encoder.layers.{n}.self_attn.", "mha"),
    ("geometry_encoder.encode.{n}.cross_attn_image.", "geometry_encoder.layers.{n}.cross_attn.", "mha"),
    ("geometry_encoder.encode.{n}.linear1.", "geometry_encoder.layers.{n}.mlp.fc1.", "same"),
    ("geometry_encoder.encode.{n}.linear2.", "geometry_encoder.layers.{n}.mlp.fc2.", "same"),
    ("geometry_encoder.encode.{n}.norm1.", "geometry_encoder.layers.{n}.layer_norm1.", "same"),
    ("geometry_encoder.encode.{n}.norm2.", "geometry_encoder.layers.{n}.layer_norm2.", "same"),
    ("geometry_encoder.encode.{n}.norm3.", "geometry_encoder.layers.{n}.layer_norm3.", "same"),
    ("geometry_encoder.img_pre_norm.", "geometry_encoder.vision_layer_norm.", "same"),
    ("geometry_encoder.norm.", "geometry_encoder.prompt_layer_norm.", "same"),
    ("geometry_encoder.encode_norm.", "geometry_encoder.output_layer_norm.", "same"),
    ("geometry_encoder.label_embed.", "geometry_encoder.label_embed.", "same"),
    ("geometry_encoder.cls_embed.", "geometry_encoder.cls_embed.", "same"),
    ("geometry_encoder.boxes_", "geometry_encoder.boxes_", "same"),
    ("geometry_encoder.final_proj.", "geometry_encoder.final_proj.", "same"),
    ("transformer.encoder.layers.{n}.self_attn.", "detr_encoder.layers.{n}.self_attn.", "mha"),
    ("transformer.encoder.layers.{n}.cross_attn_image.", "detr_encoder.layers.{n}.cross_attn.", "mha"),
    ("transformer.encoder.layers.{n}.linear1.", "detr_encoder.layers.{n}.mlp.fc1.", "same"),
    ("transformer.encoder.layers.{n}.linear2.", "detr_encoder.layers.{n}.mlp.fc2.", "same"),
    ("transformer.encoder.layers.{n}.norm1.", "detr_encoder.layers.{n}.layer_norm1.", "same"),
    ("transformer.encoder.layers.{n}.norm2.", "detr_encoder.layers.{n}.layer_norm2.", "same"),
    ("transformer.encoder.layers.{n}.norm3.", "detr_encoder.layers.{n}.layer_norm3.", "same"),
    ("transformer.decoder.layers.{n}.self_attn.", "detr_decoder.layers.{n}.self_attn.", "mha"),
    ("transformer.decoder.layers.{n}.ca_text.", "detr_decoder.layers.{n}.text_cross_attn.", "mha"),
    ("transformer.decoder.layers.{n}.cross_attn.", "detr_decoder.layers.{n}.vision_cross_attn.", "mha"),
    ("transformer.decoder.layers.{n}.linear1.", "detr_decoder.layers.{n}.mlp.fc1.", "same"),
    ("transformer.decoder.layers.{n}.linear2.", "detr_decoder.layers.{n}.mlp.fc2.", "same"),
    ("transformer.decoder.layers.{n}.norm1.", "detr_decoder.layers.{n}.vision_cross_attn_layer_norm.", "same"),
    ("transformer.decoder.layers.{n}.catext_norm.", "detr_decoder.layers.{n}.text_cross_attn_layer_norm.", "same"),
    ("transformer.decoder.layers.{n}.norm2.", "detr_decoder.layers.{n}.self_attn_layer_norm.", "same"),
    ("transformer.decoder.layers.{n}.norm3.", "detr_decoder.layers.{n}.mlp_layer_norm.", "same"),
    ("transformer.decoder.query_embed.", "detr_decoder.query_embed.", "same"),
    ("transformer.decoder.reference_points.", "detr_decoder.reference_points.", "same"),
    ("transformer.decoder.presence_token.", "detr_decoder.presence_token.", "same"),
    ("transformer.decoder.presence_token_head.layers.{n}.", "detr_decoder.presence_head.layer{n+1}.", "same"),
    ("transformer.decoder.presence_token_out_norm.", "detr_decoder.presence_layer_norm.", "same"),
    ("transformer.decoder.norm.", "detr_decoder.output_layer_norm.", "same"),
    ("transformer.decoder.bbox_embed.layers.{n}.", "detr_decoder.box_head.layer{n+1}.", "same"),
    ("transformer.decoder.ref_point_head.layers.{n}.", "detr_decoder.ref_point_head.layer{n+1}.", "same"),
    ("transformer.decoder.boxRPB_embed_x.layers.{n}.", "detr_decoder.box_rpb_embed_x.layer{n+1}.", "same"),
    ("transformer.decoder.boxRPB_embed_y.layers.{n}.", "detr_decoder.box_rpb_embed_y.layer{n+1}.", "same"),
    ("dot_prod_scoring.prompt_mlp.layers.{n}.", "dot_product_scoring.text_mlp.layer{n+1}.", "same"),
    ("dot_prod_scoring.prompt_mlp.out_norm.", "dot_product_scoring.text_mlp_out_norm.", "same"),
    ("dot_prod_scoring.prompt_proj.", "dot_product_scoring.text_proj.", "same"),
    ("dot_prod_scoring.hs_proj.", "dot_product_scoring.query_proj.", "same"),
    ("segmentation_head.pixel_decoder.", "mask_decoder.pixel_decoder.", "same"),
    ("segmentation_head.mask_predictor.mask_embed.", "mask_decoder.mask_embedder.", "same"),
    ("segmentation_head.instance_seg_head.", "mask_decoder.instance_projection.", "same"),
    ("segmentation_head.semantic_seg_head.", "mask_decoder.semantic_projection.", "same"),
    ("segmentation_head.cross_attend_prompt.", "mask_decoder.prompt_cross_attn.", "mha"),
    ("segmentation_head.cross_attn_norm.", "mask_decoder.prompt_cross_attn_norm.", "same"),
)

# Meta's names for what has no transformers counterpart: the ViT blocks' RoPE tables (transformers
# computes its own), and the geometry encoder's point-prompt layers (transformers' geometry
# encoder takes boxes only).
ROPE_SUFFIX = ".attn.freqs_cis"
POINT_LAYERS = ("points_direct_project", "points_pool_project", "points_pos_enc_project")

# How the rest of a name travels, per kind: Meta's rest -> transformers' rests (several: a fused split).
_FUSED = {"in_proj_weight": ("q_proj.weight", "k_proj.weight", "v_proj.weight"),
          "in_proj_bias": ("q_proj.bias", "k_proj.bias", "v_proj.bias")}
_VIT_FUSED = {"qkv.weight": ("q_proj.weight", "k_proj.weight", "v_proj.weight"),
              "qkv.bias": ("q_proj.bias", "k_proj.bias", "v_proj.bias")}


def _pattern(template: str) -> re.Pattern:
    """A template's regex: ``{n}`` and ``{n+1}`` capture a layer number; a trailing dot takes the rest."""
    body = re.escape(template).replace(r"\{n\}", r"(?P<n>\d+)").replace(r"\{n\+1\}", r"(?P<n1>\d+)")
    return re.compile("^" + body + ("(?P<rest>.+)$" if template.endswith(".") or template.endswith("_") else "$"))


def _fill(template: str, layer: int | None) -> str:
    if layer is None:
        return template
    return template.replace("{n+1}", str(layer + 1)).replace("{n}", str(layer))


def _rests(kind: str, rest: str) -> tuple[str, ...]:
    """Meta's rest of a name as transformers' rest(s)."""
    if kind in ("mha", "clip") and rest in _FUSED:
        return _FUSED[rest]
    if kind == "vit" and rest in _VIT_FUSED:
        return _VIT_FUSED[rest]
    if kind == "mha" and rest.startswith("out_proj."):
        return ("o_proj." + rest.removeprefix("out_proj."),)
    if kind == "vit" and rest.startswith("proj."):
        return ("o_proj." + rest.removeprefix("proj."),)
    return (rest,)


_COMPILED = [(_pattern(meta), hf, kind) for meta, hf, kind in RULES]


def to_transformers(meta_name: str) -> tuple[str, ...]:
    """transformers' name(s) for one of Meta's tensors (three for a fused q/k/v); ``()`` when none."""
    if meta_name.endswith(ROPE_SUFFIX):
        return ()
    for pattern, hf, kind in _COMPILED:
        if match := pattern.match(meta_name):
            groups = match.groupdict()
            layer = int(groups["n"]) if groups.get("n") is not None else None
            base = _fill(hf, layer)
            rest = groups.get("rest")
            return (base,) if rest is None else tuple(base + r for r in _rests(kind, rest))
    return ()


_BACK = {kind: {hf_rest: (meta_rest, part) for meta_rest, hf_rests in table.items()
                  for part, hf_rest in enumerate(hf_rests)}
         for kind, table in (("mha", _FUSED), ("clip", _FUSED), ("vit", _VIT_FUSED))}
_COMPILED_BACK = [(_pattern(hf), meta, kind) for meta, hf, kind in RULES]


def _meta_rest(kind: str, rest: str) -> tuple[str, int | None]:
    """transformers' rest of a name as Meta's, and which third of a fused tensor it is (None: all)."""
    if rest in _BACK.get(kind, {}):
        return _BACK[kind][rest]
    if kind in ("mha", "vit") and rest.startswith("o_proj."):
        return ("out_proj." if kind == "mha" else "proj.") + rest.removeprefix("o_proj."), None
    return rest, None


def to_meta(hf_name: str, hf_names: set[str]) -> tuple[str, int | None] | None:
    """Meta's name for one of transformers' tensors, with its third of a fused q/k/v (None: the whole
    tensor); None when Meta has no such tensor.

    ``hf_names`` (all the checkpoint's names) settles the one name that reads two ways:
    ``fpn_layers.{n}.scale_layers.0`` is ``dconv_2x2_0`` on the 4x level (which also has a
    ``scale_layers.2``) and ``dconv_2x2`` on the 2x level.
    """
    for pattern, meta, kind in _COMPILED_BACK:
        if not (match := pattern.match(hf_name)):
            continue
        groups = match.groupdict()
        layer = int(groups["n"]) if groups.get("n") is not None else (
            int(groups["n1"]) - 1 if groups.get("n1") is not None else None)
        if meta.endswith("dconv_2x2_0.") and not any(
                n.startswith(_fill(HF_NECK, layer) + "scale_layers.2.") for n in hf_names):
            continue  # the 2x level: its one transposed conv is Meta's dconv_2x2
        base = _fill(meta, layer)
        if groups.get("rest") is None:
            return base, None
        rest, part = _meta_rest(kind, groups["rest"])
        return base + rest, part
    return None
