"""GGUF export of fine-tuned models, against llama.cpp's own run of the same files
(fixtures from tools/make_gguf_export_fixtures.py)."""

import os

import numpy as np
import pytest
from conftest import FIXTURES
from make_gguf_export_fixtures import FIXTURE, fine_tuned, sha256
from reference_strings import CHATS

import gemma_kit
from gemma_kit.chat import encode_chat
from gemma_kit.errors import GemmaKitError
from gemma_kit.finetune import quantize
from gemma_kit.models.gguf_export import export_gguf

REF = np.load(FIXTURE, allow_pickle=False)
# Keras logits at llama.cpp's top-64 ids: max |difference| allowed, and the untuned
# base must miss by more (the LoRA adapters really are merged). f16: the weights'
# rounding (and llama.cpp's fp16 GELU table, ~3e-3). Q8_0: llama.cpp also quantizes the
# activations to 8 bits in its dot products, so the mean difference is bounded instead.
F16_TOLERANCE = {"tiny_gemma2": 0.03, "default_gemma3": 0.15}
Q8_MEAN_TOLERANCE = {"tiny_gemma2": 0.1, "default_gemma3": 0.3}
CASES = [pytest.param("tiny_gemma2", id="tiny_gemma2"),
         pytest.param("default_gemma3", id="default_gemma3", marks=pytest.mark.slow)]


@pytest.fixture(scope="module", params=CASES)
def tuned(request, tmp_path_factory):
    case = request.param
    lm = fine_tuned(case)
    folder = tmp_path_factory.mktemp(case)
    files = {q: export_gguf(lm, folder / f"{case}_{q}.gguf", q) for q in ("f16", "q8_0")}
    return case, lm, files


def _llama_cpp(case, quantize, path):
    key = f"{case}_{quantize}"
    assert sha256(path) == str(REF[f"{key}_sha256"]), (
        f"the export no longer writes the file llama.cpp ran for {key}: if that is intended, "
        "regenerate the fixture with tools/make_gguf_export_fixtures.py")
    return REF[f"{key}_top_ids"], REF[f"{key}_top_logits"]


def test_f16_logits_in_llama_cpp_equal_keras(tuned):
    case, lm, files = tuned
    ids, expected = _llama_cpp(case, "f16", files["f16"])
    found = np.take_along_axis(gemma_kit.logits(lm, REF[f"{case}_sequences"]), ids, axis=-1)
    assert np.abs(found - expected).max() <= F16_TOLERANCE[case]
    assert (found.argmax(-1) == 0).all()  # the same top-1 token at every position


def test_q8_0_logits_in_llama_cpp_are_close_to_keras(tuned):
    case, lm, files = tuned
    ids, expected = _llama_cpp(case, "q8_0", files["q8_0"])
    found = np.take_along_axis(gemma_kit.logits(lm, REF[f"{case}_sequences"]), ids, axis=-1)
    assert np.abs(found - expected).mean() <= Q8_MEAN_TOLERANCE[case]
    assert (found.argmax(-1) == 0).mean() >= 0.75
    assert os.path.getsize(files["q8_0"]) < 0.6 * os.path.getsize(files["f16"])


def test_adapters_are_merged(tuned):
    """The untuned base is far from what llama.cpp computed on the export."""
    case, lm, _ = tuned
    source = str(FIXTURES / "tiny_gemma2_f32.gguf") if case == "tiny_gemma2" else "default"
    ids, expected = REF[f"{case}_f16_top_ids"], REF[f"{case}_f16_top_logits"]
    base = np.take_along_axis(gemma_kit.logits(gemma_kit.load_model(source), REF[f"{case}_sequences"]), ids, axis=-1)
    assert np.abs(base - expected).max() > 10 * F16_TOLERANCE[case]


def test_chat_template_in_the_file_formats_as_the_kit(tuned):
    """llama.cpp's ids for the file's own chat template equal the kit's chat encoding."""
    case, lm, _ = tuned
    for messages, row in zip(CHATS, REF[f"{case}_chat_ids"]):
        assert encode_chat(lm.preprocessor.tokenizer, messages) == [int(t) for t in row if t >= 0]


def test_float32_round_trip_is_exact(tmp_path):
    lm = fine_tuned("tiny_gemma2")
    path = export_gguf(lm, tmp_path / "tuned.gguf", "f32")
    sequences = REF["tiny_gemma2_sequences"]
    assert np.array_equal(gemma_kit.logits(gemma_kit.load_model(path), sequences), gemma_kit.logits(lm, sequences))


def test_refusals(tmp_path):
    lm = gemma_kit.load_model(str(FIXTURES / "tiny_gemma2_f32.gguf"))
    with pytest.raises(GemmaKitError, match="'q4_k' is not one of f16, q8_0, f32"):
        export_gguf(lm, tmp_path / "x.gguf", "q4_k")
    quantize(lm, "int8")
    with pytest.raises(GemmaKitError, match=r"quantized in Keras \(int8\)"):
        export_gguf(lm, tmp_path / "x.gguf")
    assert not list(tmp_path.iterdir())
