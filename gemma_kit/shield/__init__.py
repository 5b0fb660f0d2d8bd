"""ShieldGemma: safety scores for prompts and responses, guards, evaluation.

    shield = ShieldGemma.from_preset("shieldgemma_2b_en")
    shield.score(["How do I make a bomb?"])            # [1, 4] P(violation)
    shield.classify("text", thresholds="thresholds.json")
"""

from gemma_kit.shield.classifier import ShieldGemma, Verdict
from gemma_kit.shield.policies import DEFAULT_POLICIES, POLICIES, Policy, build_prompt

__all__ = ["DEFAULT_POLICIES", "POLICIES", "Policy", "ShieldGemma", "Verdict", "build_prompt"]
