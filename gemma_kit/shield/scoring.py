"""P(violation) from a Gemma causal LM: the Yes/No logits at each prompt's last token.

Two exact paths, both compiled per backend (`gemma_kit.runtime`):
- `score_prompts`: one full prompt per row (the model-card computation), rows batched
  with right padding, which causal attention never sees from a real token.
- `score_shared`: per text, the prefix that all policies share is run once into a KV
  cache, then every policy's suffix runs as one batch on top of that cache, each at
  the prefix's true positions. Only the last position of each row goes through the
  output layer, and only its answer rows.
Shapes are rounded up to buckets so that new texts reuse compiled code.
"""

import keras
import numpy as np

from gemma_kit import runtime
from gemma_kit.errors import GemmaKitError

ANSWERS = ("Yes", "No")
_LENGTH_BUCKET = 32


def answer_ids(tokenizer):
    """Vocabulary ids of the single tokens `Yes` and `No`."""
    vocabulary = tokenizer.get_vocabulary()
    ids = []
    for piece in ANSWERS:
        try:
            ids.append(vocabulary.index(piece))
        except ValueError:
            raise GemmaKitError(
                f"the tokenizer has no single token {piece!r}: ShieldGemma scoring needs the "
                "'Yes' and 'No' tokens of the Gemma vocabulary"
            ) from None
    return ids


def probability(yes_no_logits):
    """softmax([yes, no])[0], computed stably in float64."""
    logits = np.asarray(yes_no_logits, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(logits[..., 1] - logits[..., 0]))


def score_prompts(causal_lm, prompts, answers, batch_size):
    """Yes/No logits [n, 2] for complete prompts (lists of ids), `batch_size` rows a call."""
    fn = runtime.cached(causal_lm, "shield_full", lambda: runtime.compile_fn(causal_lm, _full_pass(causal_lm)))
    out = []
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        rows = min(1 << (len(chunk) - 1).bit_length(), batch_size)
        ids = pad_rows([*chunk, *[[0]] * (rows - len(chunk))], bucket(max(map(len, chunk)), _LENGTH_BUCKET))
        last = np.asarray([len(p) - 1 for p in chunk] + [0] * (rows - len(chunk)), dtype="int32")
        out.append(_numpy(fn(ids, last, _answers(answers)))[: len(chunk)])
    return np.concatenate(out)


def score_shared(causal_lm, shared, suffixes, answers):
    """Yes/No logits [len(suffixes), 2] for `shared + suffix` prompts, the prefix run once."""
    fn = runtime.cached(causal_lm, "shield_shared", lambda: runtime.compile_fn(causal_lm, _shared_pass(causal_lm)))
    prefix = pad_rows([shared], bucket(len(shared), _LENGTH_BUCKET))
    suffix = pad_rows(suffixes, bucket(max(map(len, suffixes)), _LENGTH_BUCKET))
    last = np.asarray([len(s) - 1 for s in suffixes], dtype="int32")
    return _numpy(fn(prefix, np.asarray(len(shared), dtype="int32"), suffix, last, _answers(answers)))


def _full_pass(causal_lm):
    backbone = causal_lm.backbone
    return lambda token_ids, last, answers: prompt_answer_logits(backbone, token_ids, last, answers)


def prompt_answer_logits(backbone, token_ids, last, answers):
    """Yes/No logits [rows, 2] at position `last` of right-padded prompts."""
    x, _ = runtime.run_blocks(backbone, runtime.embed(backbone, token_ids))
    return answer_logits(backbone, x, last, answers)


def _shared_pass(causal_lm):
    backbone = causal_lm.backbone

    def shared(prefix_ids, prefix_length, suffix_ids, last, answers):
        length = keras.ops.shape(prefix_ids)[1] + keras.ops.shape(suffix_ids)[1]
        caches = runtime.layer_caches(causal_lm, 1, length)
        _, caches = runtime.run_blocks(backbone, runtime.embed(backbone, prefix_ids), caches, 0)
        # The prefix's bucket padding sits in the cache after `prefix_length`; the suffix
        # is written from `prefix_length` on, so it overwrites that padding or, beyond
        # the suffix, is masked by causality.
        rows = keras.ops.shape(suffix_ids)[0]
        caches = keras.tree.map_structure(lambda c: keras.ops.repeat(c, rows, axis=0), caches)
        x, _ = runtime.run_blocks(backbone, runtime.embed(backbone, suffix_ids), caches, prefix_length)
        return answer_logits(backbone, x, last, answers)

    return shared


def answer_logits(backbone, x, last, answers):
    """Final norm and output layer (soft cap included) at one position per row, for the
    answer tokens only; [rows, 2].

    A float table is projected on its `answers` rows alone, as the layer's reverse call
    would compute those two columns: through all 262k rows of the default model's
    table, the output layer took about a tenth of each agile-classifier training step
    (1.02 s against 0.93 s, measured interleaved). A quantized table goes through the
    layer's own (dequantizing) reverse call."""
    x = keras.ops.take_along_axis(x, keras.ops.reshape(last, (-1, 1, 1)), axis=1)[:, 0]
    x = backbone.layer_norm(x)
    embedding = backbone.token_embedding
    if embedding.quantization_mode is not None:
        return keras.ops.cast(keras.ops.take(embedding(x, reverse=True), answers, axis=1), "float32")
    table = embedding.embeddings if embedding.tie_weights else keras.ops.transpose(embedding.reverse_embeddings)
    dtype = embedding.reverse_dtype or x.dtype
    rows = keras.ops.cast(keras.ops.take(table, answers, axis=0), dtype)
    logits = keras.ops.matmul(keras.ops.cast(x, dtype), keras.ops.transpose(rows))
    cap = embedding.logit_soft_cap
    if cap is not None:
        logits = keras.ops.tanh(logits / cap) * cap
    return keras.ops.cast(logits, "float32")


def bucket(n, step):
    return -(-n // step) * step


def pad_rows(rows, length):
    """int32 [len(rows), length]: the id rows, right-padded with 0."""
    ids = np.zeros((len(rows), length), dtype="int32")
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
    return ids


def _answers(answers):
    return np.asarray(answers, dtype="int32")


def _numpy(x):
    return keras.ops.convert_to_numpy(x).astype(np.float32)
