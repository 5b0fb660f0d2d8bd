"""Parity with Hugging Face transformers (float32, CPU torch) on tiny random models."""

import numpy as np
import pytest
import torch
import transformers

import gemma_kit
from gemma_kit.generation import generate_ids

pytestmark = pytest.mark.backends

VOCAB = 512
STOP_IDS = [1, 6]  # <eos>, <end_of_turn> in the tiny vocabulary


def gemma2_config(**overrides):
    base = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=4,
                num_attention_heads=4, num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=16,
                sliding_window=8, final_logit_softcapping=30.0, attn_logit_softcapping=50.0,
                pad_token_id=0, eos_token_id=1, bos_token_id=2, attn_implementation="eager")
    return transformers.Gemma2Config(**{**base, **overrides})


def gemma3_config():
    return transformers.Gemma3TextConfig(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=6,
        num_attention_heads=4, num_key_value_heads=1, head_dim=32, query_pre_attn_scalar=32,
        sliding_window=8, pad_token_id=0, eos_token_id=1, bos_token_id=2, attn_implementation="eager")


CONFIGS = {
    # 2B / 9B geometry: the query is scaled by 1/sqrt(head_dim).
    "gemma2_2b_geometry": (transformers.Gemma2ForCausalLM, gemma2_config),
    # 27B geometry: query_pre_attn_scalar = hidden / heads != head_dim.
    "gemma2_27b_geometry": (transformers.Gemma2ForCausalLM,
                            lambda: gemma2_config(hidden_size=96, head_dim=16, query_pre_attn_scalar=24)),
    "gemma3": (transformers.Gemma3ForCausalLM, gemma3_config),
}


def save_pair(name, tmp_path_factory, tokenizer_model):
    model_cls, make_config = CONFIGS[name]
    torch.manual_seed(0)
    model = model_cls(make_config()).eval()
    with torch.no_grad():  # larger than HF's init, so logits span a few units and any slip shows
        for name, param in model.named_parameters():
            param.normal_(0.0, 0.3 if "norm" in name else 0.15)
    folder = tmp_path_factory.mktemp(name)
    model.save_pretrained(folder)
    (folder / "tokenizer.model").write_bytes(tokenizer_model)
    return name, model, folder


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def hf_pair(request, tmp_path_factory, tiny_tokenizer_model):
    return save_pair(request.param, tmp_path_factory, tiny_tokenizer_model)


def test_logits_match_transformers(hf_pair):
    name, model, folder = hf_pair
    lm = gemma_kit.load_model(str(folder))
    ids = np.random.default_rng(0).integers(7, VOCAB, size=(2, 24))
    ids[:, 0] = 2
    with torch.no_grad():
        expected = model(torch.tensor(ids)).logits.numpy()
    got = gemma_kit.logits(lm, ids)
    assert np.abs(got - expected).max() <= 1e-4, name


def test_greedy_tokens_match_transformers(hf_pair):
    name, model, folder = hf_pair
    lm = gemma_kit.load_model(str(folder))
    prompt = [2, 40, 300, 77, 123, 9]
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=32, do_sample=False,
                             eos_token_id=STOP_IDS, pad_token_id=0)
    expected = [int(t) for t in out[0, len(prompt):] if int(t) not in STOP_IDS]
    assert generate_ids(lm, [prompt], 32)[0] == expected, name


def test_27b_geometry_needs_the_attention_fix(tmp_path_factory, tiny_tokenizer_model):
    """keras-hub alone (no `prepare`) is off by far more than the tolerance."""
    import keras_hub

    _, model, folder = save_pair("gemma2_27b_geometry", tmp_path_factory, tiny_tokenizer_model)
    raw = keras_hub.models.CausalLM.from_preset(str(folder))
    ids = np.arange(7, 31)[None]
    with torch.no_grad():
        expected = model(torch.tensor(ids)).logits.numpy()
    assert np.abs(gemma_kit.logits(raw, ids) - expected).max() > 1e-2
    assert np.abs(gemma_kit.logits(gemma_kit.prepare(raw), ids) - expected).max() <= 1e-4
