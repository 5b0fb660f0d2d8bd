"""The generative graph LiteRT-LM and MediaPipe run: `prefill_{L}` and `decode`
signatures over an external, per-layer KV cache (see the reference notes).

    prefill_{L}: tokens int32 [1, L], input_pos int32 [L], kv_cache_{k,v}_{i} [1, T, kv_heads * head_dim]
    decode:      tokens int32 [1, 1], input_pos int32 [1], the same caches
    outputs:     logits [1, L or 1, vocab] (final soft cap applied), kv_cache_{k,v}_{i}

The layers are keras-hub's own decoder blocks, called as `gemma_kit.runtime` calls
them for cached generation, so sliding windows, soft caps, query scaling and Gemma 3's
q/k norms are the model's, not a re-implementation. The runtime's caches are 3-D (the
4-D layout failed in LiteRT-LM's prefill); each is reshaped to [1, T, kv_heads, head_dim]
for the blocks, Gemma 2's stacked into keras-hub's [1, 2, T, kv_heads, head_dim] (5-D:
TFLite slices up to 5-D, keras-hub's 6-D cache over all layers would not run). The
cache is written from `input_pos[0]` on, contiguously: a prompt shorter than L may be
padded at the end, as the padding's cache rows lie after the prompt and are
overwritten by the decode steps before any query can see them.

Needs the TensorFlow backend (the graph is traced with `tf.function`).
"""

import keras

from gemma_kit import runtime
from gemma_kit.errors import GemmaKitError


def check_backend():
    if keras.config.backend() != "tensorflow":
        raise GemmaKitError("building LiteRT graphs needs KERAS_BACKEND=tensorflow "
                            f"(this process runs {keras.config.backend()}); mobile_export.export handles this")


def step_function(causal_lm, table=None):
    """fn(tokens, input_pos, *caches) -> {"logits", "kv_cache_k_i", "kv_cache_v_i"}.
    `table()`, if given, makes the float embedding table (default: the embedding's own)."""
    import tensorflow as tf

    backbone = causal_lm.backbone
    table = table or (lambda: backbone.token_embedding.embeddings)

    def step(tokens, input_pos, *kv):
        kv = [tf.reshape(c, [1, -1, backbone.num_key_value_heads, backbone.head_dim]) for c in kv]
        pairs = list(zip(kv[0::2], kv[1::2]))
        # Gemma 3 blocks take (key, value); Gemma 2 blocks one stacked tensor.
        caches = pairs if runtime.is_gemma3(causal_lm) else [tf.stack(p, axis=1) for p in pairs]
        embeddings = tf.cast(table(), backbone.compute_dtype)
        x, new = runtime.run_blocks(backbone, embed(backbone, embeddings, tokens), caches, input_pos[0])
        # x @ E^T as a 2-D matmul, which the converter maps to FULLY_CONNECTED on E itself
        # (also when E is computed, as int8 export's dequantized table is); keras-hub's
        # reversed embedding would fold in a transposed copy of E.
        flat = tf.reshape(backbone.layer_norm(x), [-1, backbone.hidden_dim])
        logits = tf.reshape(tf.matmul(flat, embeddings, transpose_b=True), [1, -1, embeddings.shape[0]])
        outputs = {"logits": tf.cast(soft_cap(backbone, logits), tf.float32)}
        for i, cache in enumerate(new):
            k, v = cache if isinstance(cache, tuple) else (cache[:, 0], cache[:, 1])
            flat = [1, -1, backbone.num_key_value_heads * backbone.head_dim]
            outputs[f"kv_cache_k_{i}"], outputs[f"kv_cache_v_{i}"] = tf.reshape(k, flat), tf.reshape(v, flat)
        return outputs

    return step


def embed(backbone, embeddings, tokens):
    """Scaled embeddings [rows, length, hidden] of int32 `tokens` [rows, length]."""
    import tensorflow as tf

    x = tf.reshape(_lookup(embeddings, tf.reshape(tokens, [-1])), [*tokens.shape, backbone.hidden_dim])
    return x * tf.cast(tf.sqrt(float(backbone.hidden_dim)), x.dtype)


def soft_cap(backbone, logits):
    """Gemma 2's final logit soft cap (none for Gemma 3)."""
    import tensorflow as tf

    cap = getattr(backbone.token_embedding, "logit_soft_cap", None)
    return tf.tanh(logits / cap) * cap if cap else logits


def _lookup(table, ids):
    """The embedding rows of 1-D `ids`, as a TFLite EMBEDDING_LOOKUP: the converter
    replaces this "embedding_matmul" composite (its one-hot body is never run), and
    unlike GATHER that operator can read a quantized table, so the quantized
    embedding is stored once for the lookup and the output layer."""
    import tensorflow as tf

    @tf.function(experimental_implements="embedding_matmul")
    def embedding_matmul(table, ids):
        onehot = tf.equal(tf.expand_dims(ids, -1), tf.range(tf.shape(table)[0]))
        return tf.matmul(tf.cast(onehot, table.dtype), table)

    return embedding_matmul(table, ids)


def input_signature(causal_lm, length, kv_len):
    import tensorflow as tf

    backbone = causal_lm.backbone
    shape = [1, kv_len, backbone.num_key_value_heads * backbone.head_dim]
    dtype = tf.as_dtype(backbone.compute_dtype)
    spec = [tf.TensorSpec([1, length], tf.int32, name="tokens"), tf.TensorSpec([length], tf.int32, name="input_pos")]
    for i in range(backbone.num_layers):
        spec += [tf.TensorSpec(shape, dtype, name=f"kv_cache_k_{i}"), tf.TensorSpec(shape, dtype, name=f"kv_cache_v_{i}")]
    return spec


def checked_lengths(prefill_lengths, kv_len):
    """The distinct prefill lengths, sorted; each must fit in the KV cache."""
    lengths = sorted({int(n) for n in prefill_lengths})
    if not lengths or lengths[0] < 1 or lengths[-1] > kv_len:
        raise GemmaKitError(f"prefill lengths {lengths} must be between 1 and the KV cache length {kv_len}")
    return lengths


def signatures(causal_lm, prefill_lengths, kv_len, table=None):
    """{signature name: concrete function} for `prefill_{L}` per length and `decode`."""
    import tensorflow as tf

    check_backend()
    lengths = checked_lengths(prefill_lengths, kv_len)
    step = step_function(causal_lm, table)

    def traced(length):
        # Traced as plain Python: the step has no tensor-dependent control flow to convert.
        return tf.function(step, input_signature=input_signature(causal_lm, length, kv_len), autograph=False)

    found = {f"prefill_{n}": traced(n) for n in lengths}
    found["decode"] = traced(1)
    return {name: fn.get_concrete_function() for name, fn in found.items()}
