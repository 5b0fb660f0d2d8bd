"""Tuning the real default model (Gemma 3 270M): a LoRA run teaches a response pattern
that shows on unseen prompts; an agile classifier learns a custom policy."""

import json

import pytest
from conftest import FIXTURES

import gemma_kit
from gemma_kit.finetune.recipe import tune
from gemma_kit.generation import generate

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("exclusive")]  # training keeps both cores busy
EPOCHS, MARGIN = 2, 0.15  # measured: F1 0.736 untuned, 0.984 tuned (docs/benchmarks.md)


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


def test_agile_classifier_beats_the_untuned_model():
    """The Responsible GenAI Toolkit recipe (LoRA rank 4, Adam 5e-4, batch 2) on 240
    labelled texts for a custom policy; F1 at threshold 0.5 on 120 held-out texts about
    other works, with other templates."""
    from sklearn.metrics import f1_score

    from gemma_kit.finetune import train_policy_classifier
    from gemma_kit.shield import Guard, Policy, ShieldGemma
    from gemma_kit.shield.data import read_jsonl
    from make_policy_dataset import DESCRIPTION, KEY

    policy = Policy("Spoilers", DESCRIPTION, key=KEY)
    train = read_jsonl(FIXTURES / "spoilers_train.jsonl", [KEY])
    test = read_jsonl(FIXTURES / "spoilers_test.jsonl", [KEY])
    lm = gemma_kit.load_model("default")
    untuned = ShieldGemma(lm).score(test.prompts, policies=[policy])[:, 0]
    shield = train_policy_classifier(lm, train, policy, epochs=EPOCHS, verbose=0)
    tuned = shield.score(test.prompts, policies=[policy])[:, 0]
    labels = test.labels[:, 0]
    before, after = f1_score(labels, untuned >= 0.5), f1_score(labels, tuned >= 0.5)
    assert after >= before + MARGIN, (before, after)
    guard = Guard(lambda prompt: "ok", shield, thresholds=0.5, policies=[policy])  # used like ShieldGemma
    blocked = [not guard(text).allowed for text in test.prompts[:6]]
    assert blocked == list(tuned[:6] >= 0.5) and any(blocked) and not all(blocked)
