"""Run in a child process (tests/test_finetune_default.py): the agile classifier recipe
on the real default model, its scores before and after tuning and a Guard's verdicts,
saved as OUT.npz for the test to assert on.

    python tests/agile_worker.py OUT.npz
"""

import os
import sys

TESTS = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [TESTS, os.path.join(os.path.dirname(TESTS), "tools")]

import numpy as np  # noqa: E402

import gemma_kit  # noqa: E402
from gemma_kit.finetune import train_policy_classifier  # noqa: E402
from gemma_kit.shield import Guard, Policy, ShieldGemma  # noqa: E402
from gemma_kit.shield.data import read_jsonl  # noqa: E402
from make_policy_dataset import DESCRIPTION, KEY  # noqa: E402

FIXTURES = os.path.join(TESTS, "fixtures")
EPOCHS = 2
GUARDED = 6  # test texts the Guard screens


def main(out):
    policy = Policy("Spoilers", DESCRIPTION, key=KEY)
    train = read_jsonl(os.path.join(FIXTURES, "spoilers_train.jsonl"), [KEY])
    test = read_jsonl(os.path.join(FIXTURES, "spoilers_test.jsonl"), [KEY])
    lm = gemma_kit.load_model("default")
    untuned = ShieldGemma(lm).score(test.prompts, policies=[policy])[:, 0]
    shield = train_policy_classifier(lm, train, policy, epochs=EPOCHS, verbose=0)
    tuned = shield.score(test.prompts, policies=[policy])[:, 0]
    guard = Guard(lambda prompt: "ok", shield, thresholds=0.5, policies=[policy])  # used like ShieldGemma
    blocked = [not guard(text).allowed for text in test.prompts[:GUARDED]]
    np.savez(out, labels=test.labels[:, 0], untuned=untuned, tuned=tuned, blocked=np.asarray(blocked))


if __name__ == "__main__":
    main(sys.argv[1])
