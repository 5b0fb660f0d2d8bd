"""What `gemma-kit info` reports about a loaded model."""

import numpy as np


def model_info(causal_lm, context_length=4096):
    backbone = causal_lm.backbone
    params = int(backbone.count_params())
    dtype = backbone.token_embedding.embeddings.dtype
    item = np.dtype("float32" if dtype == "float32" else "float16").itemsize
    kv_per_token = 2 * backbone.num_layers * backbone.num_key_value_heads * backbone.head_dim * item
    return {
        "architecture": type(causal_lm).__name__,
        "layers": backbone.num_layers,
        "hidden_dim": backbone.hidden_dim,
        "query_heads": backbone.num_query_heads,
        "key_value_heads": backbone.num_key_value_heads,
        "head_dim": backbone.head_dim,
        "vocabulary_size": backbone.vocabulary_size,
        "parameters": params,
        "dtype": str(dtype),
        "weights_bytes": params * item,
        "kv_cache_bytes": kv_per_token * context_length,
        "context_length_for_kv": context_length,
    }
