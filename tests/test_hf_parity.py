"""Parity with Hugging Face transformers (float32, CPU torch) on tiny random models."""

import numpy as np
import pytest
import torch
from tiny_models import CONFIGS, save_model

import gemma_kit
from gemma_kit.generation import generate_ids

pytestmark = pytest.mark.backends

VOCAB = 512
STOP_IDS = [1, 6]  # <eos>, <end_of_turn> in the tiny vocabulary


def save_pair(name, tmp_path_factory, tokenizer_model):
    folder = tmp_path_factory.mktemp(name)
    return name, save_model(name, folder, tokenizer_model, VOCAB), folder


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
