"""Site activations from an eager forward pass."""

import keras
import numpy as np

from gemma_kit import runtime
from gemma_kit.errors import GemmaKitError
from gemma_kit.generation import encode_prompt
from gemma_kit.scope import sites as site_lib


def batch_inputs(causal_lm, texts, max_length=None):
    """(token_ids, padding_mask) for strings (BOS + text, right-padded) or int id rows,
    each cut to `max_length` tokens if given."""
    if isinstance(texts, str):
        texts = [texts]
    if len(texts) and all(isinstance(t, str) for t in texts):
        tokenizer = causal_lm.preprocessor.tokenizer
        rows = [encode_prompt(tokenizer, t, as_chat=False) for t in texts]
    else:
        rows = [list(np.asarray(r, dtype=np.int64).reshape(-1)) for r in texts]
    if not rows or not all(rows):
        raise GemmaKitError("no texts (or an empty one) given")
    rows = [row[:max_length] for row in rows] if max_length else rows
    length = max(map(len, rows))
    ids = np.zeros((len(rows), length), dtype="int32")
    mask = np.zeros((len(rows), length), dtype=bool)
    for i, row in enumerate(rows):
        ids[i, : len(row)], mask[i, : len(row)] = row, True
    return ids, mask


def site_activations(causal_lm, texts, sites):
    """{site name: float32 [batch, seq, width]} read in one eager forward pass (padding
    positions included, and harmless: causal attention never lets a real token see the
    padding after it; see `batch_inputs` for how texts become ids)."""
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
        # Only the blocks up to the deepest site run; no output layer.
        backbone = causal_lm.backbone
        x = runtime.embed(backbone, ids)
        for block in backbone.transformer_layers[: 1 + max(site.layer for site in parsed)]:
            x = block(x)
    finally:
        for layer in layers:
            site_lib.remove(causal_lm, layer)
    return {str(s): found[str(s)] for s in parsed}


def collect_activations(causal_lm, texts, site, batch_size=8, max_length=128):
    """float32 [tokens, width]: the site's activations at every real token of `texts`
    (BOS, EOS and padding left out, as SAEs are trained and evaluated)."""
    name = str(site_lib.parse_site(causal_lm, site))
    chunks = []
    for start in range(0, len(texts), batch_size):
        ids, mask = batch_inputs(causal_lm, texts[start : start + batch_size], max_length)
        chunks.append(site_activations(causal_lm, ids, [name])[name][real_tokens(causal_lm, ids, mask)])
    return np.concatenate(chunks)


def real_tokens(causal_lm, ids, mask):
    """bool [batch, seq]: positions that are neither padding nor BOS / EOS / PAD tokens."""
    tokenizer = causal_lm.preprocessor.tokenizer
    special = [int(tokenizer.start_token_id), int(tokenizer.end_token_id), int(tokenizer.pad_token_id)]
    return mask & ~np.isin(ids, special)
