"""What `gemma-kit info` reports about a loaded model."""

import numpy as np

from gemma_kit.errors import GemmaKitError


def check_gemma2_or_3(causal_lm, target=""):
    """Refuse anything but a Gemma 2 / Gemma 3 causal LM for an export (`target`, e.g.
    " as GGUF", ends the message's verb)."""
    import keras_hub

    if not isinstance(causal_lm, (keras_hub.models.GemmaCausalLM, keras_hub.models.Gemma3CausalLM)):
        raise GemmaKitError(f"cannot export a {type(causal_lm).__name__}{target}: Gemma 2 and Gemma 3 causal LMs "
                            "only")
    if isinstance(causal_lm, keras_hub.models.GemmaCausalLM) and not causal_lm.backbone.use_post_ffw_norm:
        raise GemmaKitError(f"cannot export a Gemma 1 model{target}: Gemma 2 and Gemma 3 only")


def context_length(causal_lm):
    """The most tokens (prompt and generated) the model was trained to attend over, from
    the model cards: Gemma 2, 8,192; Gemma 3 270M and 1B, 32,768; Gemma 3 4B and larger
    (hidden size 2,560 and up), 131,072. Gemma 1, 8,192."""
    import keras_hub

    backbone = causal_lm.backbone
    if isinstance(backbone, keras_hub.models.Gemma3Backbone):
        return 131072 if backbone.hidden_dim >= 2560 else 32768
    return 8192


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
