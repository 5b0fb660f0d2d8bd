"""`evaluate`: how well an SAE stands in for its site (Gemma Scope paper, section 4.1).

- L0: mean number of active latents per token;
- FVU: squared reconstruction error over the activations' total variance;
- delta LM loss: next-token cross-entropy with the reconstruction spliced in at the
  site, minus the clean cross-entropy.
BOS, EOS and padding positions are left out of all three (and out of the loss targets).
"""

import keras
import numpy as np

from gemma_kit.forward import logits
from gemma_kit.scope import sites as site_lib
from gemma_kit.scope.activations import batch_inputs, real_tokens
from gemma_kit.scope.attachment import attach


def evaluate(causal_lm, sae, site, texts, batch_size=8, max_length=None):
    """{"l0", "fvu", "delta_lm_loss", "clean_lm_loss", "spliced_lm_loss", "tokens"}."""
    parsed = site_lib.parse_site(causal_lm, site)
    site_lib.check_sae(causal_lm, parsed, sae)
    site = str(parsed)
    active = squared_error = tokens = 0.0
    sums, squares = 0.0, 0.0
    losses = {"clean": [0.0, 0], "spliced": [0.0, 0]}
    texts = [texts] if isinstance(texts, str) else list(texts)
    for start in range(0, len(texts), batch_size):
        ids, mask = batch_inputs(causal_lm, texts[start : start + batch_size], max_length)
        keep = real_tokens(causal_lm, ids, mask)
        # The clean pass also records the site and its latents: no second partial pass.
        with attach(causal_lm, {site: sae}, "observe") as observed:
            _add_loss(losses["clean"], logits(causal_lm, ids, mask), ids, keep)
        x = observed.records[site]["activations"][0][keep]
        f = observed.records[site]["latents"][0][keep]
        x_hat = keras.ops.convert_to_numpy(keras.ops.cast(sae.decode(f), "float32"))
        active += float((f > 0).sum())
        squared_error += float(((x - x_hat) ** 2).sum())
        sums, squares, tokens = sums + x.sum(axis=0), squares + (x.astype(np.float64) ** 2).sum(axis=0), tokens + len(x)
        with attach(causal_lm, {site: sae}, "splice"):
            _add_loss(losses["spliced"], logits(causal_lm, ids, mask), ids, keep)
    variance = float((squares - sums**2 / tokens).sum())
    clean, spliced = (total / count for total, count in losses.values())
    return {"l0": active / tokens, "fvu": squared_error / variance, "delta_lm_loss": spliced - clean,
            "clean_lm_loss": clean, "spliced_lm_loss": spliced, "tokens": int(tokens)}


def _add_loss(accumulator, logit_values, ids, keep):
    """Sum of -log p(next token) over positions whose target is a kept token."""
    logit_values = logit_values[:, :-1].astype(np.float64)
    targets, valid = ids[:, 1:], keep[:, 1:]
    top = logit_values.max(axis=-1, keepdims=True)
    log_norm = np.log(np.exp(logit_values - top).sum(axis=-1)) + top[..., 0]
    picked = np.take_along_axis(logit_values, targets[..., None], axis=-1)[..., 0]
    accumulator[0] += float(((log_norm - picked) * valid).sum())
    accumulator[1] += int(valid.sum())
