"""Tiny random Gemma 2 GGUF files run by llama.cpp (fixtures) against the kit's load of them."""

import numpy as np
import pytest

import gemma_kit
from gemma_kit.generation import generate_ids

from conftest import FIXTURES

pytestmark = pytest.mark.backends

REF = np.load(FIXTURES / "llama_cpp_tiny.npz", allow_pickle=False)
# llama.cpp's CPU GELU reads an fp16 lookup table, which moves these logits (|x| <= 30)
# by about 3e-3 against any exact float32 implementation (transformers agrees with the
# kit to 1e-4 on the same geometry). Quantized files also quantize the activations to
# 8 bits inside llama.cpp's dot products.
TOLERANCE = {"f32": 1e-2, "quant": 0.5}


@pytest.mark.parametrize("kind", ["f32", "quant"])
def test_logits_match_llama_cpp(kind):
    lm = gemma_kit.load_model(FIXTURES / f"tiny_gemma2_{kind}.gguf")
    got = gemma_kit.logits(lm, REF["sequences"])
    expected = REF[f"{kind}_logits"]
    assert np.abs(got - expected).max() <= TOLERANCE[kind]
    assert np.corrcoef(got.ravel(), expected.ravel())[0, 1] > 0.9999
    assert (got.argmax(-1) == expected.argmax(-1)).mean() >= 0.99


@pytest.mark.parametrize("kind", ["f32", "quant"])
def test_greedy_matches_llama_cpp(kind):
    lm = gemma_kit.load_model(FIXTURES / f"tiny_gemma2_{kind}.gguf")
    prompts = [[int(t) for t in row[:8]] for row in REF["sequences"]]
    assert generate_ids(lm, prompts, 32) == [[int(t) for t in row] for row in REF[f"{kind}_greedy"]]
