"""Full-sequence logits: the one forward pass that scoring and parity checks share."""

import keras
import numpy as np

from gemma_kit.errors import GemmaKitError


def logits(causal_lm, token_ids, padding_mask=None):
    """float32 numpy logits [batch, seq, vocab] (final soft cap applied) for int token ids."""
    token_ids = check_ids(causal_lm, token_ids)
    if token_ids.ndim == 1:
        token_ids = token_ids[None]
    if padding_mask is None:
        padding_mask = np.ones_like(token_ids, dtype=bool)
    out = causal_lm({"token_ids": token_ids, "padding_mask": np.asarray(padding_mask, dtype=bool)}, training=False)
    return keras.ops.convert_to_numpy(keras.ops.cast(out, "float32"))


def check_ids(causal_lm, token_ids):
    """`token_ids` as int32, each a token of the model's vocabulary: an id past it would
    read outside the embedding table (NaN or garbage logits, no error)."""
    ids = np.asarray(token_ids)
    if not ids.size:
        return ids.astype("int32")
    if not np.issubdtype(ids.dtype, np.integer):
        raise GemmaKitError(f"token ids must be integers, found {ids.dtype} values")
    vocabulary = causal_lm.backbone.vocabulary_size
    outside = ids[(ids < 0) | (ids >= vocabulary)]
    if outside.size:
        raise GemmaKitError(f"token ids {outside[:3].tolist()} are outside the model's vocabulary [0, {vocabulary})")
    return ids.astype("int32")
