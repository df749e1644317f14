"""Meta's SAM3 image model at the tiny preset's sizes, built from Meta's own classes.

Meta's builder hard-codes the released sizes (ViT-L/14 at 1008 px, 256-wide heads). For fast
tests the same classes are assembled here exactly as ``sam3.model_builder`` assembles them, with
the sizes of this project's ``tiny`` preset (:mod:`sam3ops.weights.presets`): 32 wide, 2 heads,
224 px, one or two layers per part, 20 queries. Only sizes differ from Meta's builder; every flag
that selects behaviour (RoPE, windowing, presence token, box RPB, DAC, ...) is Meta's.
"""

from __future__ import annotations

# The tiny preset's sizes, shared by both implementations (see presets._tiny_kwargs).
WIDTH, HEADS, FFN = 32, 2, 64
IMAGE, PATCH, WINDOW = 224, 14, 8
VIT_LAYERS, GLOBAL_BLOCKS, TEXT_LAYERS = 2, (1,), 2
QUERIES, GEOMETRY_LAYERS, ENCODER_LAYERS, DECODER_LAYERS = 20, 1, 1, 1
TEXT_PROJECTION = 32  # the preset's text_config.projection_dim


def _attention(batch_first: bool, dropout: float = 0.1):
    from sam3.model.model_misc import MultiheadAttentionWrapper

    return MultiheadAttentionWrapper(num_heads=HEADS, dropout=dropout, embed_dim=WIDTH, batch_first=batch_first)


def _position_encoding(precompute: int | None = None):
    from sam3.model.position_encoding import PositionEmbeddingSine

    return PositionEmbeddingSine(num_pos_feats=WIDTH, normalize=True, scale=None, temperature=10000,
                                 precompute_resolution=precompute)


def _vision():
    from sam3.model.necks import Sam3DualViTDetNeck
    from sam3.model.vitdet import ViT

    trunk = ViT(img_size=IMAGE, pretrain_img_size=IMAGE, patch_size=PATCH, embed_dim=WIDTH, depth=VIT_LAYERS,
                num_heads=HEADS, mlp_ratio=FFN / WIDTH, norm_layer="LayerNorm", drop_path_rate=0.1,
                qkv_bias=True, use_abs_pos=True, tile_abs_pos=True, global_att_blocks=GLOBAL_BLOCKS,
                rel_pos_blocks=(), use_rope=True, use_interp_rope=True, window_size=WINDOW,
                pretrain_use_cls_token=True, retain_cls_token=False, ln_pre=True, ln_post=False,
                return_interm_layers=False, bias_patch_embed=False)
    return Sam3DualViTDetNeck(position_encoding=_position_encoding(IMAGE), d_model=WIDTH,
                              scale_factors=[4.0, 2.0, 1.0, 0.5], trunk=trunk, add_sam2_neck=False)


def _text(bpe_path: str):
    from sam3.model.text_encoder_ve import TextTransformer, VETextEncoder
    from sam3.model.tokenizer_ve import SimpleTokenizer

    text = VETextEncoder(tokenizer=SimpleTokenizer(bpe_path=bpe_path), d_model=WIDTH, width=WIDTH,
                         heads=HEADS, layers=TEXT_LAYERS)
    # VETextEncoder fixes its transformer's MLP ratio (4) and projection width (512) to the released
    # sizes; the tiny preset has an MLP of FFN and a projection of TEXT_PROJECTION. Same class, the
    # same arguments VETextEncoder passes, only those two sizes differ.
    text.encoder = TextTransformer(context_length=text.context_length, width=WIDTH, heads=HEADS, layers=TEXT_LAYERS,
                                   mlp_ratio=FFN / WIDTH, output_dim=TEXT_PROJECTION, output_tokens=True,
                                   use_ln_post=True, use_act_checkpoint=True)
    return text


def _encoder_layer(*, batch_first: bool, pos_at_attn: bool, pos_at_keys: bool):
    from sam3.model.encoder import TransformerEncoderLayer

    return TransformerEncoderLayer(
        activation="relu", d_model=WIDTH, dim_feedforward=FFN, dropout=0.1, pos_enc_at_attn=pos_at_attn,
        pos_enc_at_cross_attn_keys=pos_at_keys, pos_enc_at_cross_attn_queries=False, pre_norm=True,
        self_attention=_attention(batch_first), cross_attention=_attention(batch_first))


def _transformer():
    from sam3.model.decoder import TransformerDecoder, TransformerDecoderLayer
    from sam3.model.encoder import TransformerEncoderFusion
    from sam3.model.model_misc import TransformerWrapper

    encoder = TransformerEncoderFusion(
        layer=_encoder_layer(batch_first=True, pos_at_attn=True, pos_at_keys=False),
        num_layers=ENCODER_LAYERS, d_model=WIDTH, num_feature_levels=1, frozen=False, use_act_checkpoint=True,
        add_pooled_text_to_img_feat=False, pool_text_with_mask=True)
    layer = TransformerDecoderLayer(activation="relu", d_model=WIDTH, dim_feedforward=FFN, dropout=0.1,
                                    cross_attention=_attention(False), n_heads=HEADS,
                                    use_text_cross_attention=True)
    decoder = TransformerDecoder(
        layer=layer, num_layers=DECODER_LAYERS, num_queries=QUERIES, return_intermediate=True, box_refine=True,
        num_o2m_queries=0, dac=True, boxRPB="log", d_model=WIDTH, frozen=False, interaction_layer=None,
        dac_use_selfatt_ln=True, resolution=IMAGE, stride=PATCH, use_act_checkpoint=True, presence_token=True)
    return TransformerWrapper(encoder=encoder, decoder=decoder, d_model=WIDTH)


def _scoring():
    from sam3.model.model_misc import MLP, DotProductScoring
    from torch import nn

    prompt_mlp = MLP(input_dim=WIDTH, hidden_dim=FFN, output_dim=WIDTH, num_layers=2, dropout=0.1,
                     residual=True, out_norm=nn.LayerNorm(WIDTH))
    return DotProductScoring(d_model=WIDTH, d_proj=WIDTH, prompt_mlp=prompt_mlp)


def _segmentation_head():
    from sam3.model.maskformer_segmentation import PixelDecoder, UniversalSegmentationHead

    pixel_decoder = PixelDecoder(num_upsampling_stages=3, interpolation_mode="nearest", hidden_dim=WIDTH)
    return UniversalSegmentationHead(hidden_dim=WIDTH, upsampling_stages=3, aux_masks=False, presence_head=False,
                                     dot_product_scorer=None, act_ckpt=True,
                                     cross_attend_prompt=_attention(False, dropout=0),
                                     pixel_decoder=pixel_decoder)


def _geometry_encoder():
    from sam3.model.geometry_encoders import SequenceGeometryEncoder

    # (Meta's builder also makes a CXBlock here and never hands it over: nothing to mirror.)
    return SequenceGeometryEncoder(
        pos_enc=_position_encoding(), encode_boxes_as_points=False, points_direct_project=True, points_pool=True,
        points_pos_enc=True, boxes_direct_project=True, boxes_pool=True, boxes_pos_enc=True, d_model=WIDTH,
        num_layers=GEOMETRY_LAYERS, layer=_encoder_layer(batch_first=False, pos_at_attn=False, pos_at_keys=True),
        use_act_ckpt=True, add_cls=True, add_post_encode_proj=True)


def build_tiny_image_model(bpe_path: str):
    """Meta's ``Sam3Image`` (eval mode, random weights) at the tiny preset's sizes."""
    from sam3.model.sam3_image import Sam3Image
    from sam3.model.vl_combiner import SAM3VLBackbone

    backbone = SAM3VLBackbone(visual=_vision(), text=_text(bpe_path), scalp=1)
    model = Sam3Image(backbone=backbone, transformer=_transformer(), input_geometry_encoder=_geometry_encoder(),
                      segmentation_head=_segmentation_head(), num_feature_levels=1, o2m_mask_predict=True,
                      dot_prod_scoring=_scoring(), use_instance_query=False, multimask_output=True,
                      inst_interactive_predictor=None, matcher=None)
    return model.eval()
