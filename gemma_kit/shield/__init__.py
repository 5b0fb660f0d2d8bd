"""ShieldGemma: safety scores for prompts and responses, guards, evaluation.

    shield = ShieldGemma.from_preset("shieldgemma_2b_en")
    shield.score(["How do I make a bomb?"])            # [1, 4] P(violation)
    shield.classify("text", thresholds="thresholds.json")
    Guard(generator_lm, shield, thresholds="thresholds.json")("user prompt")

Names are imported on first use, so reading the policies does not import Keras (the
CLI picks the backend after building its parser).
"""

from gemma_kit import lazy

_EXPORTS = {
    "ShieldGemma": "gemma_kit.shield.classifier",
    "Verdict": "gemma_kit.shield.classifier",
    "Guard": "gemma_kit.shield.guard",
    "GuardResult": "gemma_kit.shield.guard",
    "DEFAULT_POLICIES": "gemma_kit.shield.policies",
    "POLICIES": "gemma_kit.shield.policies",
    "Policy": "gemma_kit.shield.policies",
    "build_prompt": "gemma_kit.shield.policies",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy.exports("gemma_kit.shield", _EXPORTS)
