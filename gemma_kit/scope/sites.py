"""Where an SAE reads a keras-hub Gemma 2 / Gemma 3 model, and hooks that read or
rewrite that place without forking keras-hub.

Sites ("{layer}.{kind}"), as Gemma Scope defines them:
- `res`: the decoder block's output, after both residual adds (HF `model.layers.L` output);
- `att`: the attention heads concatenated, before the output projection (the input
  of `attention.output_dense`; HF `self_attn.o_proj` input), [.., heads * head_dim];
- `mlp`: the MLP output after the post-feedforward norm, before the residual add
  (`post_ffw_norm`'s output; HF `post_feedforward_layernorm` output).

A hook replaces the `call` of one layer instance with a wrapper that passes the site's
tensor through a function. Both the functional forward pass and keras-hub's cached
generation call layers through `Layer.__call__`, so both see it; deleting the instance
attribute restores the class's own `call`, exactly.
"""

import dataclasses

import keras

from gemma_kit import runtime
from gemma_kit.errors import GemmaKitError

KINDS = ("res", "att", "mlp")


@dataclasses.dataclass(frozen=True)
class Site:
    layer: int
    kind: str

    def __str__(self):
        return f"{self.layer}.{self.kind}"


def parse_site(causal_lm, site):
    """A `Site` from "6.res" (or a `Site`), checked against the model."""
    if isinstance(site, Site):
        layer, kind = site.layer, site.kind
    else:
        layer, _, kind = str(site).partition(".")
        if not layer.isdigit() or kind not in KINDS:
            raise GemmaKitError(f"site {site!r}: expected '{{layer}}.{{kind}}' with kind one of {', '.join(KINDS)}, "
                                "e.g. '6.res'")
        layer = int(layer)
    layers = causal_lm.backbone.num_layers
    if not 0 <= layer < layers:
        raise GemmaKitError(f"site {site!r}: layer {layer} out of range; the model has layers 0..{layers - 1}")
    if kind == "mlp" and not getattr(causal_lm.backbone.transformer_layers[layer], "use_post_ffw_norm", False):
        raise GemmaKitError(f"site {site!r}: this model has no post-feedforward norm (Gemma 1?)")
    return Site(layer, kind)


def site_width(causal_lm, site):
    backbone = causal_lm.backbone
    return backbone.num_query_heads * backbone.head_dim if site.kind == "att" else backbone.hidden_dim


def check_sae(causal_lm, site, sae):
    width = site_width(causal_lm, site)
    if sae.d_in != width:
        raise GemmaKitError(f"SAE for site {site} has d_in {sae.d_in}, but the site is {width} wide")


def install(causal_lm, site, fn):
    """Route the site's tensor [batch, seq, width] through `fn`; returns the hooked layer."""
    block = causal_lm.backbone.transformer_layers[site.layer]
    if site.kind == "res":
        layer, on_input = block, False
    elif site.kind == "mlp":
        layer, on_input = block.post_ffw_norm, False
    else:
        layer, on_input = block.attention.output_dense, True
    if "call" in layer.__dict__:
        raise GemmaKitError(f"site {site} already has a hook; detach it first")
    original = layer.call

    if on_input:
        def hooked(x, *args, **kwargs):
            shape = keras.ops.shape(x)  # [batch, seq, heads, head_dim]
            flat = fn(keras.ops.reshape(x, (*shape[:2], shape[2] * shape[3])))
            return original(keras.ops.reshape(keras.ops.cast(flat, x.dtype), shape), *args, **kwargs)
    else:
        def hooked(*args, **kwargs):
            out = original(*args, **kwargs)
            if isinstance(out, tuple):  # a block with a cache returns (x, cache)
                return (keras.ops.cast(fn(out[0]), out[0].dtype), *out[1:])
            return keras.ops.cast(fn(out), out.dtype)

    layer.call = hooked
    runtime.forget_compiled(causal_lm)
    return layer


def remove(causal_lm, layer):
    layer.__dict__.pop("call", None)
    runtime.forget_compiled(causal_lm)
