"""gemma-kit: Gemma 2 family models in Keras 3 on JAX, TensorFlow and PyTorch.

Names are imported on first use, so `KERAS_BACKEND` can still be chosen after
`import gemma_kit` (the CLI's --backend relies on this).
"""

from gemma_kit import lazy

__version__ = "0.1.0"

_EXPORTS = {
    "GemmaKitError": "gemma_kit.errors",
    "Sampling": "gemma_kit.sampling",
    "generate": "gemma_kit.generation",
    "stream": "gemma_kit.generation",
    "encode_chat": "gemma_kit.chat",
    "encode_text": "gemma_kit.chat",
    "logits": "gemma_kit.forward",
    "default_model_path": "gemma_kit.models",
    "load_model": "gemma_kit.models",
    "prepare": "gemma_kit.models",
    "model_info": "gemma_kit.models.info",
    "ShieldGemma": "gemma_kit.shield",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy.exports("gemma_kit", _EXPORTS)
