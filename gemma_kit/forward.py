"""Full-sequence logits: the one forward pass that scoring and parity checks share."""

import keras
import numpy as np


def logits(causal_lm, token_ids, padding_mask=None):
    """float32 numpy logits [batch, seq, vocab] (final soft cap applied) for int token ids."""
    token_ids = np.asarray(token_ids, dtype="int32")
    if token_ids.ndim == 1:
        token_ids = token_ids[None]
    if padding_mask is None:
        padding_mask = np.ones_like(token_ids, dtype=bool)
    out = causal_lm({"token_ids": token_ids, "padding_mask": np.asarray(padding_mask, dtype=bool)}, training=False)
    return keras.ops.convert_to_numpy(keras.ops.cast(out, "float32"))
