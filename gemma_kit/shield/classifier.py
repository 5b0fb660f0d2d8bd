"""`ShieldGemma`: P(violation) per text and policy from a Gemma 2 (or any Gemma) causal LM."""

import dataclasses

import numpy as np

from gemma_kit.errors import GemmaKitError
from gemma_kit.shield import encoding, policies as policy_lib, scoring, thresholds as threshold_lib


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One text's scores and the policies it violates (score >= threshold)."""

    scores: dict
    thresholds: dict
    violations: tuple
    truncated: bool

    @property
    def safe(self):
        return not self.violations


class ShieldGemma:
    """A safety classifier over a loaded Gemma causal LM.

    `score` runs one forward pass per text (no generation): for each policy, the
    softmax of the `Yes` / `No` logits after that policy's prompt. Prompts longer
    than `max_length` tokens have their content shortened (see
    `gemma_kit.shield.encoding`). `batch_size` bounds the rows per forward pass.
    """

    def __init__(self, causal_lm, max_length=2048, batch_size=16):
        if max_length is not None and max_length < 1 or batch_size < 1:
            raise GemmaKitError(f"max_length and batch_size must be >= 1, found {max_length}, {batch_size}")
        self.causal_lm = causal_lm
        self.tokenizer = causal_lm.preprocessor.tokenizer
        self.answers = scoring.answer_ids(self.tokenizer)
        self.max_length = max_length
        self.batch_size = batch_size

    @classmethod
    def from_preset(cls, source, dtype=None, **kwargs):
        """From any source `gemma_kit.load_model` takes, e.g. "shieldgemma_2b_en"."""
        from gemma_kit.models import load_model

        return cls(load_model(source, dtype=dtype), **kwargs)

    def score(self, prompts, responses=None, policies=None, reuse_prefix=True):
        """P(violation) as float32 [n_texts, n_policies], in the order of `policies`.

        `prompts` is a string or a list; `responses` (same length, entries may be None)
        switches those texts to the prompt-response form. `policies` are names, `Policy`
        objects or None for the four reported harms. `reuse_prefix=False` runs one full
        prompt per policy instead (same numbers, slower). With a single policy there is
        no prefix to share: its full prompts run `batch_size` texts a pass either way.
        """
        return self._score(prompts, responses, policies, reuse_prefix)[0]

    def classify(self, prompts, responses=None, policies=None, thresholds=0.5):
        """A `Verdict` per text (one `Verdict` for a single string).

        `thresholds` is a number, {policy key: number}, or a JSON file from `calibrate`.
        """
        scores, truncated, keys = self._score(prompts, responses, policies, True)
        limits = threshold_lib.resolve(thresholds, keys)
        verdicts = [
            Verdict(dict(zip(keys, map(float, row))), limits,
                    tuple(k for k, s in zip(keys, row) if s >= limits[k]), flag)
            for row, flag in zip(scores, truncated)
        ]
        return verdicts[0] if isinstance(prompts, str) else verdicts

    def _score(self, prompts, responses, policies, reuse_prefix):
        prompts, responses = _texts(prompts, responses)
        resolved = policy_lib.resolve_all(policies)
        encoded = [encoding.encode(self.tokenizer, resolved, p, r, self.max_length) for p, r in zip(prompts, responses)]
        # The shared path runs one text per call; one policy shares nothing among rows.
        if reuse_prefix and len(resolved) > 1:
            logits = [scoring.score_shared(self.causal_lm, e.shared, e.suffixes, self.answers) for e in encoded]
        else:
            rows = [e.prompt(j) for e in encoded for j in range(len(resolved))]
            logits = np.split(scoring.score_prompts(self.causal_lm, rows, self.answers, self.batch_size), len(encoded))
        scores = scoring.probability(np.stack(logits)).astype(np.float32)
        if not np.isfinite(scores).all():
            raise GemmaKitError("the model produced non-finite logits; no scores are returned")
        return scores, [e.truncated for e in encoded], [p.key for p in resolved]


def _texts(prompts, responses):
    single = isinstance(prompts, str)
    prompts = [prompts] if single else list(prompts)
    if responses is None:
        responses = [None] * len(prompts)
    elif isinstance(responses, str):
        if not single:
            raise GemmaKitError("responses must be a list (one per prompt) when prompts is a list")
        responses = [responses]
    else:
        responses = list(responses)
    if len(responses) != len(prompts):
        raise GemmaKitError(f"got {len(prompts)} prompts but {len(responses)} responses")
    if not prompts:
        raise GemmaKitError("no prompts given")
    return prompts, responses
