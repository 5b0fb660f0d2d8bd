"""Gemma Scope sites against the transformers tensors the reference names."""

import numpy as np
import pytest
import torch
from tiny_models import save_model

import gemma_kit
from gemma_kit.errors import GemmaKitError
from gemma_kit.scope import site_activations

pytestmark = pytest.mark.backends
VOCAB = 512


@pytest.fixture(scope="module", params=["gemma2_2b_geometry", "gemma3"])
def pair(request, tmp_path_factory, tiny_tokenizer_model):
    folder = tmp_path_factory.mktemp(request.param)
    model = save_model(request.param, folder, tiny_tokenizer_model, VOCAB)
    return model, gemma_kit.load_model(str(folder))


def transformers_sites(model, ids, layer):
    """hidden state after block `layer`, o_proj input, post_feedforward_layernorm output."""
    block = model.model.layers[layer]
    found = {}
    handles = [
        block.register_forward_hook(lambda m, i, o: found.__setitem__("res", o[0] if isinstance(o, tuple) else o)),
        block.self_attn.o_proj.register_forward_pre_hook(lambda m, i: found.__setitem__("att", i[0])),
        block.post_feedforward_layernorm.register_forward_hook(lambda m, i, o: found.__setitem__("mlp", o)),
    ]
    with torch.no_grad():
        out = model(torch.tensor(ids), output_hidden_states=True)
    for h in handles:
        h.remove()
    if layer + 1 < len(model.model.layers):  # the last entry has the final norm applied
        np.testing.assert_array_equal(found["res"].numpy(), out.hidden_states[layer + 1].numpy())
    return {k: v.numpy() for k, v in found.items()}


@pytest.mark.parametrize("layer", [0, 2])
def test_sites_match_transformers(pair, layer):
    model, lm = pair
    ids = np.random.default_rng(layer).integers(7, VOCAB, size=(2, 20))
    ids[:, 0] = 2
    expected = transformers_sites(model, ids, layer)
    got = site_activations(lm, ids, [f"{layer}.res", f"{layer}.att", f"{layer}.mlp"])
    backbone = lm.backbone
    assert got[f"{layer}.att"].shape == (2, 20, backbone.num_query_heads * backbone.head_dim)
    for kind in ("res", "att", "mlp"):
        assert np.abs(got[f"{layer}.{kind}"] - expected[kind]).max() <= 1e-4, kind


def test_bad_sites_are_refused(pair):
    _, lm = pair
    for site, match in [("6", "expected"), ("x.res", "expected"), ("1.resid", "expected"), ("99.res", "out of range")]:
        with pytest.raises(GemmaKitError, match=match):
            site_activations(lm, [[2, 10, 11]], [site])
