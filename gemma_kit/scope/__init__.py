"""Gemma Scope: JumpReLU sparse autoencoders read, splice and steer a running Gemma.

    sae = load_sae("layer_20/width_16k/average_l0_71")       # or params.npz, SAELens
    site_activations(lm, ["text"], ["20.res"])                # {site: [batch, seq, d]}
    with attach(lm, {"20.res": sae}, "steer", steer={1234: 80.0}):
        gemma_kit.generate(lm, "I think")
    evaluate(lm, sae, "20.res", texts)                       # L0, FVU, delta LM loss
    sae, history = train_sae(activations, d_sae=16384)       # model.fit, Gemma Scope recipe

Names are imported on first use (see `gemma_kit.shield`).
"""

from gemma_kit import lazy

_EXPORTS = {
    "JumpReLUSAE": "gemma_kit.scope.jumprelu",
    "attach": "gemma_kit.scope.attachment",
    "evaluate": "gemma_kit.scope.metrics",
    "load_sae": "gemma_kit.scope.loading",
    "save_sae": "gemma_kit.scope.loading",
    "site_activations": "gemma_kit.scope.activations",
    "train_sae": "gemma_kit.scope.training",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy.exports("gemma_kit.scope", _EXPORTS)
