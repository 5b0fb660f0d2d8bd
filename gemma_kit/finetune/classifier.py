"""Agile policy classifiers: LoRA-tune a Gemma model on a few hundred labelled texts so
that it answers ShieldGemma's question for a custom policy (Mozes et al. 2023, the
Responsible GenAI Toolkit's recipe: LoRA rank 4, Adam 5e-4, batch 2, 4 epochs).

Each text becomes the ShieldGemma prompt for the policy (`gemma_kit.shield.encoding`,
so training sees the exact ids that scoring will), and the model is trained with
`model.fit` on the 2-way softmax of the `Yes` / `No` logits at the prompt's last token,
the quantity ShieldGemma reports. Only that position goes through the output layer.
The result is a `ShieldGemma` over the tuned model: `score`, `classify`, evaluation,
calibration and `Guard` work on it unchanged.
"""

import keras
import numpy as np

from gemma_kit import runtime
from gemma_kit.errors import GemmaKitError
from gemma_kit.finetune.lora import enable_lora
from gemma_kit.shield import encoding, policies as policy_lib, scoring
from gemma_kit.shield.classifier import ShieldGemma


class AnswerModel(keras.Model):
    """[Yes, No] logits at each prompt's last token: the classifier view of a causal LM."""

    def __init__(self, causal_lm, answers, **kwargs):
        super().__init__(**kwargs)
        self.backbone = causal_lm.backbone
        self.answers = np.asarray(answers, dtype="int32")

    def call(self, inputs):
        return scoring.prompt_answer_logits(self.backbone, inputs["token_ids"], inputs["last"], self.answers)


def train_policy_classifier(causal_lm, examples, policy, lora_rank=4, epochs=4, batch_size=2, learning_rate=5e-4,
                            targets=("query", "value"), max_length=512, seed=0, verbose="auto"):
    """Tune `causal_lm` (in place, through LoRA on query and value) to flag `policy`
    (a `Policy` or a built-in name) and return `ShieldGemma(causal_lm)`.

    `examples`: (text, label) pairs, (prompt, response, label) triples for the
    prompt-response form, or a `gemma_kit.shield.data.Dataset` with the policy's key;
    label 1 means the text violates the policy.
    """
    policy = policy_lib.resolve(policy)
    triples = _triples(examples, policy)
    tokenizer = causal_lm.preprocessor.tokenizer
    answers = scoring.answer_ids(tokenizer)
    prompts = [encoding.encode(tokenizer, [policy], p, r, max_length).prompt(0) for p, r, _ in triples]
    labels = np.asarray([0 if label else 1 for *_, label in triples], dtype="int32")  # class 0 is "Yes"
    ids = scoring.pad_rows(prompts, scoring.bucket(max(map(len, prompts)), 8))
    last = np.asarray([len(p) - 1 for p in prompts], "int32")
    inputs = {"token_ids": ids, "last": last}  # right padding: no mask needed (causal attention)
    keras.utils.set_random_seed(seed)
    enable_lora(causal_lm, lora_rank, targets=targets)
    model = AnswerModel(causal_lm, answers)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy()])
    order = np.random.default_rng(seed).permutation(len(prompts))
    model.fit({k: v[order] for k, v in inputs.items()}, labels[order], batch_size=batch_size, epochs=epochs,
              shuffle=True, verbose=verbose)
    runtime.forget_compiled(causal_lm)
    return ShieldGemma(causal_lm, max_length=max_length)


def _triples(examples, policy):
    if hasattr(examples, "prompts") and hasattr(examples, "labels"):
        if policy.key not in examples.keys:
            raise GemmaKitError(f"the dataset has no labels for policy {policy.key!r} (it has {examples.keys})")
        column = examples.keys.index(policy.key)
        return [(p, r, int(y)) for p, r, y in zip(examples.prompts, examples.responses, examples.labels[:, column])]
    triples = []
    for i, example in enumerate(examples):
        if not isinstance(example, (tuple, list)) or len(example) not in (2, 3):
            raise GemmaKitError(f"example {i}: expected (text, label) or (prompt, response, label), found {example!r}")
        *texts, label = example
        if label not in (0, 1) or not all(isinstance(t, str) or t is None for t in texts) or texts[0] is None:
            raise GemmaKitError(f"example {i}: expected text(s) and a 0/1 label, found {example!r}")
        triples.append((texts[0], texts[1] if len(texts) == 2 else None, int(label)))
    labels = {label for *_, label in triples}
    if labels != {0, 1}:
        raise GemmaKitError(f"examples must include both labels 0 and 1, found only {sorted(labels)}")
    return triples
