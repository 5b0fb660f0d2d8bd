"""Tuning the real default model (Gemma 3 270M): a LoRA run teaches a response pattern
that shows on unseen prompts; an agile classifier learns a custom policy.

The agile classifier trains for minutes with both cores busy. It runs in a child
process (`agile_worker.py`), a job of the run's background queue (`background`) that
the queue reaches once its other jobs are done, so that it fills the cores the last
tests leave idle. The LoRA test starts no other job while it trains."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import FIXTURES, ROOT

import gemma_kit
from gemma_kit.finetune.recipe import tune
from gemma_kit.generation import generate

pytestmark = [pytest.mark.slow, pytest.mark.last]
# Measured with agile_worker.EPOCHS: F1 0.736 untuned, 0.984 tuned (docs/benchmarks.md) on an
# AVX2 machine, 0.909 tuned on an AVX-512 one (the training's rounding differs).
MARGIN = 0.15
# The worker holds its own float32 copy of the 270M, Adam state and activations.
AGILE_MEMORY = 6 * 2**30


def background_jobs(request):
    if not any(item.function is test_agile_classifier_beats_the_untuned_model for item in request.session.items):
        return []
    folder = request.getfixturevalue("tmp_path_factory").mktemp("agile")

    def agile():
        out = folder / "out.npz"
        done = subprocess.run([sys.executable, str(ROOT / "tests" / "agile_worker.py"), str(out)],
                              capture_output=True, text=True, timeout=3600)
        return done, out

    return [("agile classifier", agile, AGILE_MEMORY)]


@pytest.mark.usefixtures("exclusive")  # training keeps both cores busy
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


def test_agile_classifier_beats_the_untuned_model(background):
    """The Responsible GenAI Toolkit recipe (LoRA rank 4, Adam 5e-4, batch 2) on 240
    labelled texts for a custom policy; F1 at threshold 0.5 on 120 held-out texts about
    other works, with other templates (`agile_worker`)."""
    from sklearn.metrics import f1_score

    done, out = background.result("agile classifier")
    assert done.returncode == 0, done.stderr[-3000:]
    run = np.load(out)
    labels, untuned, tuned = run["labels"], run["untuned"], run["tuned"]
    before, after = f1_score(labels, untuned >= 0.5), f1_score(labels, tuned >= 0.5)
    assert after >= before + MARGIN, (before, after)
    blocked = list(run["blocked"])
    assert blocked == list(tuned[: len(blocked)] >= 0.5) and any(blocked) and not all(blocked)
