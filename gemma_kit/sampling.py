"""How the next token is chosen. Free of Keras, so the CLI can list the choices
before a backend is picked."""

import dataclasses

import numpy as np

from gemma_kit.errors import GemmaKitError

STRATEGIES = ("greedy", "top_k", "top_p", "random")


@dataclasses.dataclass(frozen=True)
class Sampling:
    """How the next token is chosen; one description for both generation paths."""

    strategy: str = "greedy"
    temperature: float = 1.0
    top_k: int = 50
    top_p: float = 0.9
    seed: int | None = None

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise GemmaKitError(f"sampling strategy {self.strategy!r}; expected one of {', '.join(STRATEGIES)}")
        if not 0 < self.temperature < float("inf"):  # NaN fails too
            raise GemmaKitError(f"temperature must be a finite number > 0, found {self.temperature}")
        if self.top_k < 1 or not 0 < self.top_p <= 1:
            raise GemmaKitError(f"need top_k >= 1 and 0 < top_p <= 1, found {self.top_k}, {self.top_p}")

    def keras_hub_sampler(self):
        import keras_hub

        samplers = keras_hub.samplers
        if self.strategy == "greedy":
            return samplers.GreedySampler()
        common = {"temperature": self.temperature, "seed": self.seed}
        if self.strategy == "top_k":
            return samplers.TopKSampler(k=self.top_k, **common)
        if self.strategy == "top_p":
            return samplers.TopPSampler(p=self.top_p, **common)
        return samplers.RandomSampler(**common)

    def pick(self, logits, rng):
        """Next token id from one position's logits (numpy), for streaming."""
        if self.strategy == "greedy":
            return int(np.argmax(logits))
        logits = logits.astype(np.float64) / self.temperature
        order = np.argsort(-logits)
        if self.strategy == "top_k":
            order = order[: self.top_k]
        probs = np.exp(logits[order] - logits[order[0]])
        probs /= probs.sum()
        if self.strategy == "top_p":
            keep = int(np.searchsorted(np.cumsum(probs), self.top_p)) + 1
            order, probs = order[:keep], probs[:keep] / probs[:keep].sum()
        return int(rng.choice(order, p=probs))
