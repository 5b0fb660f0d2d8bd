"""Corrections to keras-hub 0.32 that every model the kit loads goes through.

`GemmaDecoderBlock` and `Gemma3DecoderBlock` store the backbone's
`query_head_dim_normalize` but build their attention layer with `True` regardless.
The attention layer reads the flag at call time, so copying the block's value onto it
restores the query scale 1/sqrt(hidden/heads) of the 27B geometries
(query_pre_attn_scalar != head_dim). Other geometries are unchanged.
"""


def fix_attention_scale(backbone):
    for block in backbone.transformer_layers:
        block.attention.query_head_dim_normalize = block.query_head_dim_normalize
    return backbone
