"""gemma-kit: Gemma 2 family models in Keras 3 on JAX, TensorFlow and PyTorch."""

from gemma_kit.chat import encode_chat, encode_text
from gemma_kit.errors import GemmaKitError
from gemma_kit.forward import logits
from gemma_kit.generation import Sampling, generate, stream
from gemma_kit.models import default_model_path, load_model, prepare

__version__ = "0.1.0"

__all__ = [
    "GemmaKitError",
    "Sampling",
    "default_model_path",
    "encode_chat",
    "encode_text",
    "generate",
    "load_model",
    "logits",
    "prepare",
    "stream",
]
