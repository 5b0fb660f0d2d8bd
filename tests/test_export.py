"""On-device export: prefill/decode graphs against Keras in LiteRT's interpreter, the
operators used, bundles in the LiteRT-LM engine, and refusals."""

import numpy as np
import pytest
from conftest import FIXTURES
from tflite_checks import int8_weights

import gemma_kit
from gemma_kit.errors import GemmaKitError
from gemma_kit.generation import generate_ids
from mobile_export.bundle import check_bundle
from mobile_export.export import export
from mobile_export.operators import operators
from mobile_export.verify import greedy
from shared_exports import Tiny, tiny_source

PROMPT = [2, 40, 50, 60, 70]
TINY = str(FIXTURES / "tiny_gemma2_f32.gguf")
GEOMETRIES = ["gemma2_2b_geometry", "gemma3"]
# The tiny models' exports: float32 for the graph tests (`exported`), which is also the
# int8 test's reference, and int8.
TINY_TFLITE = {"prefill_lengths": (8, 16), "kv_len": 96}
# The fixture GGUF's bundles: run in the LiteRT-LM engine, and cut to be refused.
BUNDLE = {"prefill_lengths": (16,), "kv_len": 64}
# The fixture GGUF's and the tiny models' exports below, made in the background and
# served to their tests.
SHARED_EXPORTS = [
    *[(export, Tiny("lm", geometry), f"{quantize}.tflite", {**TINY_TFLITE, "quantize": quantize})
      for geometry in GEOMETRIES for quantize in ("none", "int8")],
    *[(export, TINY, f"tiny.{format}", BUNDLE) for format in ("litertlm", "task")],
    *[(export, TINY, f"{quantize}.tflite", {"prefill_lengths": (8, 16), "kv_len": 64, "quantize": quantize})
      for quantize in ("none", "fp16", "int8", "int4")],
]


@pytest.fixture(scope="module", params=GEOMETRIES)
def exported(request, tmp_path_factory, shared_exports):
    """A tiny random HF model (sliding window 8, soft caps for Gemma 2) and its .tflite,
    exported from this (JAX) process, which hands the work to a TensorFlow process."""
    folder = tiny_source(Tiny("lm", request.param))
    path = export(str(folder), tmp_path_factory.mktemp(request.param) / "model.tflite", **TINY_TFLITE)
    return gemma_kit.load_model(str(folder)), path


def test_greedy_decoding_matches_keras(exported):
    """64 greedy tokens through prefill_8 + decode equal the kit's Keras generation, and
    every step's logits equal the Keras forward pass over the same tokens within 1e-3."""
    lm, path = exported
    tokens, logits = greedy(path, PROMPT, 64)
    assert tokens == generate_ids(lm, [PROMPT], 64)[0]
    full = gemma_kit.logits(lm, [PROMPT + tokens[:-1]])[0, len(PROMPT) - 1 :]
    assert np.abs(full - logits).max() <= 1e-3


def test_only_builtin_operators(exported):
    _, path = exported
    used = operators(open(path, "rb").read())
    assert "FULLY_CONNECTED" in used and "DYNAMIC_UPDATE_SLICE" in used
    assert not [op for op in used if op.startswith("custom:")]


def test_signatures_and_cache_layout(exported):
    from ai_edge_litert.interpreter import Interpreter

    lm, path = exported
    signatures = Interpreter(model_path=str(path)).get_signature_list()
    assert sorted(signatures) == ["decode", "prefill_16", "prefill_8"]
    inputs = set(signatures["decode"]["inputs"])
    layers = lm.backbone.num_layers
    assert inputs == {"tokens", "input_pos", *(f"kv_cache_{kind}_{i}" for kind in "kv" for i in range(layers))}
    assert set(signatures["decode"]["outputs"]) == {"logits", *(f"kv_cache_{kind}_{i}" for kind in "kv"
                                                                 for i in range(layers))}


@pytest.mark.parametrize("format", ["litertlm", "task"])
def test_bundle_runs_in_the_litert_lm_engine(format, tmp_path):
    """The LiteRT-LM runtime (the one phones use) loads the bundle and continues a text
    greedily as Keras does."""
    import litert_lm

    lm = gemma_kit.load_model(TINY)
    path = export(TINY, tmp_path / f"tiny.{format}", **BUNDLE)
    check_bundle(path)
    if format == "task":
        _check_stored_and_aligned(path)
    engine = litert_lm.Engine(str(path), backend=litert_lm.Backend.CPU(), max_num_tokens=64)
    session = engine.create_session(apply_prompt_template=False, max_output_tokens=8,
                                    sampler_config=litert_lm.SamplerConfig(top_k=1, temperature=0.0))
    session.run_prefill(["the cat sat"])
    text = session.run_decode().texts[0]
    expected = gemma_kit.generate(lm, "the cat sat", 8)
    assert text and expected.startswith(text), (text, expected)


def _check_stored_and_aligned(path):
    """Every .task entry is stored (not compressed) with its data on a 4-byte boundary."""
    import zipfile

    with zipfile.ZipFile(path) as bundle, open(path, "rb") as raw:
        for info in bundle.infolist():
            raw.seek(info.header_offset)
            header = raw.read(30)
            start = info.header_offset + 30 + int.from_bytes(header[26:28], "little") + int.from_bytes(
                header[28:30], "little")
            assert info.compress_type == zipfile.ZIP_STORED and start % 4 == 0, (info.filename, start)


def test_refusals(tmp_path):
    with pytest.raises(GemmaKitError, match="prefill lengths \\[128\\] must be between 1 and the KV cache length 64"):
        export(TINY, tmp_path / "m.tflite", prefill_lengths=(128,), kv_len=64)
    with pytest.raises(GemmaKitError, match="unknown export format 'onnx'"):
        export(TINY, tmp_path / "m.onnx")
    (tmp_path / "bad.litertlm").write_bytes(b"NOTLITERT" * 10)
    with pytest.raises(GemmaKitError, match="bad.litertlm: not a .litertlm file"):
        check_bundle(tmp_path / "bad.litertlm")
    good = export(TINY, tmp_path / "good.litertlm", **BUNDLE)
    data = open(good, "rb").read()
    (tmp_path / "cut.litertlm").write_bytes(data[: len(data) // 2])
    with pytest.raises(GemmaKitError, match="cut.litertlm: truncated .litertlm"):
        check_bundle(tmp_path / "cut.litertlm")
    task = export(TINY, tmp_path / "good.task", **BUNDLE)
    (tmp_path / "cut.task").write_bytes(open(task, "rb").read()[:-100])
    with pytest.raises(GemmaKitError, match="cut.task: damaged or truncated .task"):
        check_bundle(tmp_path / "cut.task")


def test_gemma1_and_other_models_are_refused():
    import keras_hub

    from gemma_kit.models.info import check_gemma2_or_3

    backbone = keras_hub.models.GemmaBackbone(vocabulary_size=32, num_layers=1, num_query_heads=2,
                                              num_key_value_heads=1, hidden_dim=16, intermediate_dim=32,
                                              head_dim=8)
    with pytest.raises(GemmaKitError, match="Gemma 1 model"):
        check_gemma2_or_3(keras_hub.models.GemmaCausalLM(backbone=backbone, preprocessor=None))
    with pytest.raises(GemmaKitError, match="cannot export a GemmaBackbone"):
        check_gemma2_or_3(backbone)


@pytest.mark.parametrize("quantize,max_kl,max_size", [("fp16", 1e-8, 0.65), ("int8", 1e-5, 0.55),
                                                      ("int4", 1e-3, 0.4)])
def test_quantized_export_reports_its_error(quantize, max_kl, max_size, tmp_path):
    """Quantized weights shrink the file and keep builtin operators; the reported
    per-signature error against Keras is small, and the interpreter shows the weights
    really changed."""
    reference = export(TINY, tmp_path / "float32.tflite", prefill_lengths=(8, 16), kv_len=64)
    exported = export(TINY, tmp_path / f"{quantize}.tflite", prefill_lengths=(8, 16), kv_len=64, quantize=quantize)
    assert exported.quantize == quantize and set(exported.error) == {"prefill_8", "prefill_16", "decode"}
    assert exported.size < max_size * reference.size
    assert not [op for op in operators(open(exported, "rb").read()) if op.startswith("custom:")]
    for error in exported.error.values():
        assert error["top1"] == 1.0 and error["kl"] <= max_kl and error["max_abs"] > 0
    want_tokens, want = greedy(reference, PROMPT, 4)
    got_tokens, got = greedy(exported, PROMPT, 4)
    assert got_tokens == want_tokens and np.abs(want - got).max() > 0


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_int8_export_equals_ai_edge_quantizer_dynamic_int8(geometry, tmp_path, shared_exports):
    """int8 export, converted from int8 weights (never a float32 model), equals
    ai-edge-quantizer's dynamic int8 recipe applied to the float32 export: the same
    operators, the same per-channel int8 weights (but for rounding ties) and scales in
    every FULLY_CONNECTED and EMBEDDING_LOOKUP, the same greedy tokens, and a file of
    the same size. Written with its buffers after the flatbuffer (as past 2 GB), it runs the same."""
    from ai_edge_quantizer import qtyping, quantizer, recipe_manager

    from mobile_export.fold_dequant import fold
    from mobile_export.verify import signature_logits

    source = str(tiny_source(Tiny("lm", geometry)))
    float32 = export(source, tmp_path / "float32.tflite", **TINY_TFLITE, quantize="none")
    ours = export(source, tmp_path / "int8.tflite", **TINY_TFLITE, quantize="int8")
    recipe = recipe_manager.RecipeManager()
    for op in ("FULLY_CONNECTED", "EMBEDDING_LOOKUP"):
        recipe.add_dynamic_config(regex=".*", operation_name=getattr(qtyping.TFLOperationName, op), num_bits=8,
                                  granularity=qtyping.QuantGranularity.CHANNELWISE)
    theirs = quantizer.Quantizer(str(float32))
    theirs.load_quantization_recipe(recipe.get_quantization_recipe())
    theirs = theirs.quantize().export_model(str(tmp_path / "aeq.tflite"), overwrite=True) or tmp_path / "aeq.tflite"
    # The same weight bytes; the folded dequantizers leave unused tensor entries behind.
    assert ours.size <= 1.05 * theirs.stat().st_size
    assert operators(open(ours, "rb").read()) == operators(open(theirs, "rb").read())
    ours_weights, their_weights = int8_weights(ours), int8_weights(theirs)
    assert len(ours_weights) == len(their_weights) == 2 + 7 * gemma_kit.load_model(source).backbone.num_layers
    for (q, scale), (their_q, their_scale) in zip(ours_weights, their_weights):
        assert q.shape == their_q.shape and np.abs(q - their_q).max() <= 1 and np.mean(q != their_q) < 1e-3
        # Up to one factor per tensor: Gemma 2's float32 export folds the final soft cap's
        # 1/30 into a second copy of the table for its output layer (int8 export keeps one).
        np.testing.assert_allclose(scale / their_scale, scale[0] / their_scale[0], rtol=1e-5)
    assert greedy(ours, PROMPT, 16)[0] == greedy(theirs, PROMPT, 16)[0]
    external = fold(ours, tmp_path / "external.tflite", external=True)
    ids = list(range(2, 40))
    want, got = signature_logits(ours, ids), signature_logits(external, ids)
    assert all(np.array_equal(want[name], got[name]) for name in want)


def test_int8_weights_of_a_float_model_equal_keras_int8():
    """The per-channel int8 weights `int8_graph` makes from a float model (a live model
    exported in a TensorFlow process) equal Keras' own int8 quantization's (what export
    of a loaded source, and a QLoRA base, give it), laid out [out, in]."""
    from gemma_kit.finetune import lora
    from mobile_export.int8_graph import Int8Weights

    lm = gemma_kit.load_model(TINY)
    ours = Int8Weights(lm.backbone)
    keras_int8 = Int8Weights(lora.quantize(gemma_kit.load_model(TINY), "int8").backbone)
    assert len(ours.dense) == 7 * lm.backbone.num_layers  # q, k, v, o, gate, up, down
    pairs = [((q, s), (kq, ks)) for (_, q, s, *_), (_, kq, ks, *_) in zip(ours.dense, keras_int8.dense)]
    pairs.append(((ours.table_q, ours.table_scale), (keras_int8.table_q, keras_int8.table_scale)))
    for (q, scale), (keras_q, keras_scale) in pairs:
        assert np.abs(np.asarray(q, np.int32) - np.asarray(keras_q, np.int32)).max() <= 1
        np.testing.assert_allclose(np.asarray(scale), np.asarray(keras_scale), rtol=1e-5)


def test_lora_model_exports_with_its_adapter(tmp_path):
    """An in-memory LoRA-tuned model (this process is JAX) exports with the adapter merged:
    the interpreter's greedy tokens and logits equal the tuned Keras model's."""
    from gemma_kit.finetune import enable_lora

    lm = gemma_kit.load_model(TINY)
    enable_lora(lm, rank=2, targets=("query", "value"))
    rng = np.random.default_rng(0)
    for variable in lm.backbone.trainable_weights:  # B starts at zero: give the adapter an effect
        variable.assign(rng.normal(0, 0.5, variable.shape).astype("float32"))
    path = export(lm, tmp_path / "tuned.tflite", prefill_lengths=(8,), kv_len=48)
    tokens, logits = greedy(path, PROMPT, 24)
    assert tokens == generate_ids(lm, [PROMPT], 24)[0]
    full = gemma_kit.logits(lm, [PROMPT + tokens[:-1]])[0, len(PROMPT) - 1 :]
    assert np.abs(full - logits).max() <= 1e-3
    untuned = gemma_kit.logits(gemma_kit.load_model(TINY), [PROMPT])[0, -1]
    assert np.abs(untuned - logits[0]).max() > 1e-2
