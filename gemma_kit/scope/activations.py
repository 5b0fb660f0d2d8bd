"""Site activations from an eager forward pass."""

import keras
import numpy as np

from gemma_kit.errors import GemmaKitError
from gemma_kit.forward import logits
from gemma_kit.generation import encode_prompt
from gemma_kit.scope import sites as site_lib


def batch_inputs(causal_lm, texts):
    """(token_ids, padding_mask) for strings (BOS + text, right-padded) or int id rows."""
    if isinstance(texts, str):
        texts = [texts]
    if len(texts) and all(isinstance(t, str) for t in texts):
        tokenizer = causal_lm.preprocessor.tokenizer
        rows = [encode_prompt(tokenizer, t, as_chat=False) for t in texts]
    else:
        rows = [list(np.asarray(r, dtype=np.int64).reshape(-1)) for r in texts]
    if not rows or not all(rows):
        raise GemmaKitError("no texts (or an empty one) given")
    length = max(map(len, rows))
    ids = np.zeros((len(rows), length), dtype="int32")
    mask = np.zeros((len(rows), length), dtype=bool)
    for i, row in enumerate(rows):
        ids[i, : len(row)], mask[i, : len(row)] = row, True
    return ids, mask


def site_activations(causal_lm, texts, sites):
    """{site name: float32 [batch, seq, width]} read in one forward pass (padding rows
    included; see `batch_inputs` for how texts become ids)."""
    parsed = [site_lib.parse_site(causal_lm, s) for s in ([sites] if isinstance(sites, str) else sites)]
    ids, mask = batch_inputs(causal_lm, texts)
    found, layers = {}, []

    def recorder(name):
        def record(x):
            found[name] = keras.ops.convert_to_numpy(keras.ops.cast(x, "float32"))
            return x
        return record

    try:
        for site in parsed:
            layers.append(site_lib.install(causal_lm, site, recorder(str(site))))
        logits(causal_lm, ids, mask)
    finally:
        for layer in layers:
            site_lib.remove(causal_lm, layer)
    return {str(s): found[str(s)] for s in parsed}
