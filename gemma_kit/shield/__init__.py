"""ShieldGemma: safety scores for prompts and responses, guards, evaluation.

    shield = ShieldGemma.from_preset("shieldgemma_2b_en")
    shield.score(["How do I make a bomb?"])            # [1, 4] P(violation)
    shield.classify("text", thresholds="thresholds.json")
    Guard(generator_lm, shield, thresholds="thresholds.json")("user prompt")
"""

from gemma_kit.shield.classifier import ShieldGemma, Verdict
from gemma_kit.shield.guard import Guard, GuardResult
from gemma_kit.shield.policies import DEFAULT_POLICIES, POLICIES, Policy, build_prompt

__all__ = ["DEFAULT_POLICIES", "POLICIES", "Guard", "GuardResult", "Policy", "ShieldGemma", "Verdict", "build_prompt"]
