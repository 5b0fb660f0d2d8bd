"""Loading Gemma models from presets, folders and GGUF files."""

from gemma_kit.models.loading import DTYPES, default_model_path, load_model, prepare

__all__ = ["DTYPES", "default_model_path", "load_model", "prepare"]
