import os
import pathlib
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
sys.path.insert(0, str(ROOT / "tools"))


@pytest.fixture(scope="session")
def default_lm():
    import gemma_kit

    return gemma_kit.load_model("default")


@pytest.fixture(scope="session")
def tiny_tokenizer_model():
    """tokenizer.model bytes for the tiny vocabulary of the GGUF fixtures."""
    from gemma_kit.models.gguf_model import GGUFModelFile

    return GGUFModelFile(FIXTURES / "tiny_gemma2_f32.gguf").sentencepiece_proto()
