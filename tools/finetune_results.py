"""What tuning does to the real default model (Gemma 3 270M), written to
docs/benchmarks.md: a LoRA run on a small set with a distinctive response pattern, and
an agile classifier for a custom policy against the untuned model.

    .venv/bin/python tools/finetune_results.py

The same runs as tests/test_finetune_default.py, with the numbers printed.
"""

import json
import os
import platform
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench"))

from common import ROOT, write_section  # noqa: E402
from make_policy_dataset import DESCRIPTION, KEY  # noqa: E402

SECTION = "## Fine-tuning results on the default model"
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def pattern_run():
    import gemma_kit
    from gemma_kit.finetune import tune
    from gemma_kit.generation import generate

    lm = gemma_kit.load_model("default")
    questions = [json.loads(line)["prompt"] for line in open(os.path.join(FIXTURES, "ahoy_eval.jsonl"))]
    before = generate(lm, questions, 16, as_chat=True)
    start = time.perf_counter()
    summary = tune(lm, os.path.join(FIXTURES, "ahoy_train.jsonl"), tempfile.mkdtemp(),
                   os.path.join(FIXTURES, "ahoy_eval.jsonl"), lora_rank=8, epochs=3, batch_size=8,
                   learning_rate=1e-3, verbose=0)
    seconds = time.perf_counter() - start
    after = generate(lm, questions, 16, as_chat=True)
    hits = [sum(a.startswith("Ahoy!") and "Arr." in a for a in answers) for answers in (before, after)]
    return summary, seconds, hits, len(questions), after[0]


def agile_run():
    from sklearn.metrics import f1_score

    import gemma_kit
    from gemma_kit.finetune import train_policy_classifier
    from gemma_kit.shield import Policy, ShieldGemma
    from gemma_kit.shield.data import read_jsonl
    from gemma_kit.shield.metrics import evaluate

    policy = Policy("Spoilers", DESCRIPTION, key=KEY)
    train = read_jsonl(os.path.join(FIXTURES, "spoilers_train.jsonl"), [KEY])
    test = read_jsonl(os.path.join(FIXTURES, "spoilers_test.jsonl"), [KEY])
    lm = gemma_kit.load_model("default")
    scores = {"untuned": ShieldGemma(lm).score(test.prompts, policies=[policy])}
    start = time.perf_counter()
    shield = train_policy_classifier(lm, train, policy, epochs=2, verbose=0)
    seconds = time.perf_counter() - start
    scores["tuned"] = shield.score(test.prompts, policies=[policy])
    rows = {}
    for name, s in scores.items():
        report = evaluate(s, test.labels, [KEY])[KEY]
        rows[name] = (f1_score(test.labels[:, 0], s[:, 0] >= 0.5), report["optimal_f1"], report["au_prc"])
    return rows, seconds, len(train.prompts), len(test.prompts)


def main():
    summary, pattern_seconds, hits, n_questions, example = pattern_run()
    rows, agile_seconds, n_train, n_test = agile_run()
    lines = ["", f"Machine: {platform.machine()}, {os.cpu_count()} cores, no GPU; {time.strftime('%Y-%m-%d')}. "
             "Command: `.venv/bin/python tools/finetune_results.py`. JAX, float32.", "",
             f"**Response pattern** (`tests/fixtures/ahoy_*.jsonl` from `tools/make_sft_dataset.py`): LoRA rank 8 "
             f"on query and value, {summary['examples']} examples, 3 epochs, batch 8, Adam 1e-3, "
             f"{pattern_seconds:.0f} s. Held-out loss on the response tokens {summary['eval_loss_before']:.3f} -> "
             f"{summary['eval_loss_after']:.3f}; greedy answers to {n_questions} unseen questions that start with "
             f"'Ahoy!' and contain 'Arr.': {hits[0]} before, {hits[1]} after (e.g. {example!r}).", "",
             f"**Agile classifier** for a custom policy (\"Spoilers\": {DESCRIPTION}; "
             "`tests/fixtures/spoilers_*.jsonl` from `tools/make_policy_dataset.py`, held-out texts about other "
             f"works with other templates): LoRA rank 4, Adam 5e-4, batch 2, 2 epochs on {n_train} texts, "
             f"{agile_seconds:.0f} s; scored on {n_test} held-out texts.", "",
             "| model | F1 at 0.5 | optimal F1 | AU-PRC |", "|---|---|---|---|"]
    lines += [f"| {name} | {f1:.3f} | {best:.3f} | {auprc:.3f} |" for name, (f1, best, auprc) in rows.items()]
    write_section(SECTION, lines)


if __name__ == "__main__":
    main()
