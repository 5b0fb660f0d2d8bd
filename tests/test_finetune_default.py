"""Tuning the real default model (Gemma 3 270M): a LoRA run teaches a response pattern
that shows on unseen prompts; an agile classifier learns a custom policy."""

import json

import pytest
from conftest import FIXTURES

import gemma_kit
from gemma_kit.finetune.recipe import tune
from gemma_kit.generation import generate

pytestmark = pytest.mark.slow


def test_lora_teaches_a_response_pattern(tmp_path):
    lm = gemma_kit.load_model("default")  # its own copy: tuning changes it
    questions = [json.loads(line)["prompt"] for line in open(FIXTURES / "ahoy_eval.jsonl")]
    before = generate(lm, questions, 16, as_chat=True)
    assert not any(a.startswith("Ahoy!") for a in before)
    summary = tune(lm, FIXTURES / "ahoy_train.jsonl", tmp_path, FIXTURES / "ahoy_eval.jsonl", lora_rank=8, epochs=3,
                   batch_size=8, learning_rate=1e-3, verbose=0)
    assert summary["eval_loss_after"] < summary["eval_loss_before"] / 2
    after = generate(lm, questions, 16, as_chat=True)
    assert sum(a.startswith("Ahoy!") and "Arr." in a for a in after) >= 8, after
