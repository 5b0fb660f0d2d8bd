"""`Guard`: screen the prompt, generate, screen the response; fail closed."""

import dataclasses

from gemma_kit.shield import policies as policy_lib, thresholds as threshold_lib


@dataclasses.dataclass(frozen=True)
class GuardResult:
    """`response` is set only when `allowed`. When blocked, `stage` is "prompt",
    "response" or "error" and `policies` names what was violated; scores are
    {policy key: P(violation)} for each stage that ran."""

    allowed: bool
    response: str = None
    stage: str = None
    policies: tuple = ()
    prompt_scores: dict = None
    response_scores: dict = None
    error: str = None


class Guard:
    """Wraps a generator with ShieldGemma checks on both sides.

    `generator` is a Gemma causal LM (answered as a chat turn through
    `gemma_kit.generate`) or any callable prompt -> text. If scoring or generation
    raises, the result is blocked at stage "error": nothing unscreened is returned.
    """

    def __init__(self, generator, shield, thresholds=0.5, policies=None, max_new_tokens=256):
        self.generator = generator
        self.shield = shield
        self.policies = policies
        # Resolved now, so a bad thresholds file fails at set-up, not as blocked traffic.
        keys = [p.key for p in policy_lib.resolve_all(policies)]
        self.thresholds = threshold_lib.resolve(thresholds, keys)
        self.max_new_tokens = max_new_tokens

    def __call__(self, prompt):
        prompt_scores = response_scores = None
        try:
            verdict = self.shield.classify(prompt, policies=self.policies, thresholds=self.thresholds)
            prompt_scores = verdict.scores
            if verdict.violations:
                return GuardResult(False, stage="prompt", policies=verdict.violations, prompt_scores=prompt_scores)
            response = self._generate(prompt)
            verdict = self.shield.classify(prompt, [response], self.policies, self.thresholds)
            response_scores = verdict.scores
            if verdict.violations:
                return GuardResult(False, stage="response", policies=verdict.violations,
                                   prompt_scores=prompt_scores, response_scores=response_scores)
            return GuardResult(True, response=response, prompt_scores=prompt_scores, response_scores=response_scores)
        except Exception as e:  # noqa: BLE001 - any failure must block, and say why
            return GuardResult(False, stage="error", prompt_scores=prompt_scores, response_scores=response_scores,
                               error=f"{type(e).__name__}: {e}")

    def _generate(self, prompt):
        if callable(self.generator) and not hasattr(self.generator, "backbone"):
            response = self.generator(prompt)
        else:
            from gemma_kit.generation import generate

            response = generate(self.generator, prompt, self.max_new_tokens, as_chat=True)
        if not isinstance(response, str):
            raise TypeError(f"the generator returned {type(response).__name__}, not text")
        return response
