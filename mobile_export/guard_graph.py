"""The on-device classifier graph: ShieldGemma's P(violation) per policy for one text,
as `gemma_kit.shield.scoring.score_shared` computes it: one signature per use at its
maximum length, `screen_{use}`, and shorter copies `screen_{use}_{Lp}`.

    screen_{use}: prefix        int32 [1, Lp]  BOS, template and content, right-padded
                  prefix_length int32 [1]      the prefix's real length
                  suffix        int32 [P, Ls]  each policy's own tokens, right-padded
                  last          int32 [P]      index of each suffix's last token
    output:       p_violation   float32 [P]    softmax(Yes, No logits at `last`)[Yes]

The prefix runs once into a KV cache; the P suffixes run as one batch on copies of
it, each from `prefix_length` on, so causal attention never sees the padding of
either. Only the `Yes` and `No` rows of the output layer are computed. The layers are
keras-hub's own decoder blocks, as in `mobile_export.graph`.
"""

from gemma_kit import runtime
from mobile_export import graph


def screen_function(causal_lm, answers, suffix_rows, table):
    """fn(prefix, prefix_length, suffix, last) -> {"p_violation": [P]}. `table(ids=None)`
    makes the float embedding table, or its rows `ids`."""
    import tensorflow as tf

    backbone = causal_lm.backbone

    def screen(prefix, prefix_length, suffix, last):
        embeddings = tf.cast(table(), backbone.compute_dtype)
        # Zero from an input: the converter would store constant zero caches in the file.
        zero = tf.cast(tf.minimum(prefix_length[0], 0), backbone.compute_dtype)
        caches = runtime.layer_caches(causal_lm, 1, prefix.shape[1] + suffix.shape[1], zero)
        _, caches = runtime.run_blocks(backbone, graph.embed(backbone, embeddings, prefix), caches, 0)
        caches = tf.nest.map_structure(lambda c: tf.repeat(c, suffix_rows, axis=0), caches)
        x, _ = runtime.run_blocks(backbone, graph.embed(backbone, embeddings, suffix), caches, prefix_length[0])
        x = backbone.layer_norm(tf.gather(x, last, axis=1, batch_dims=1))
        rows = tf.cast(table(answers), backbone.compute_dtype)
        logits = graph.soft_cap(backbone, tf.matmul(x, rows, transpose_b=True))
        logits = tf.cast(logits, tf.float32)
        return {"p_violation": tf.sigmoid(logits[:, 0] - logits[:, 1])}

    return screen


def signature_name(use, prefix_tokens, max_tokens):
    """`screen_{use}` at the use's maximum length, `screen_{use}_{n}` for shorter ones."""
    return f"screen_{use}" if prefix_tokens == max_tokens else f"screen_{use}_{prefix_tokens}"


def signatures(causal_lm, answers, shapes, policies, table=None):
    """{name: concrete function} for `shapes` {use: {"suffix_tokens": Ls, "signatures":
    {name: Lp}}}, with `policies` suffix rows."""
    import tensorflow as tf

    graph.check_backend()
    table = table or (lambda ids=None: _rows(causal_lm.backbone.token_embedding.embeddings, ids))
    step = screen_function(causal_lm, answers, policies, table)
    found = {}
    for shape in shapes.values():
        for name, prefix_tokens in shape["signatures"].items():
            spec = [tf.TensorSpec([1, prefix_tokens], tf.int32, name="prefix"),
                    tf.TensorSpec([1], tf.int32, name="prefix_length"),
                    tf.TensorSpec([policies, shape["suffix_tokens"]], tf.int32, name="suffix"),
                    tf.TensorSpec([policies], tf.int32, name="last")]
            found[name] = tf.function(step, input_signature=spec, autograph=False).get_concrete_function()
    return found


def _rows(embeddings, ids):
    import tensorflow as tf

    return embeddings if ids is None else tf.gather(embeddings, ids)
