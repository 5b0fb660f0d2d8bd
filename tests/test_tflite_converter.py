"""The kit's TFLite conversion call against TensorFlow's own converter path."""

import keras
import pytest
from conftest import FIXTURES

import gemma_kit

TINY = str(FIXTURES / "tiny_gemma2_f32.gguf")


def _lm_signatures(lm):
    from mobile_export import graph

    return lambda table: graph.signatures(lm, (8,), 32, table)


def _guard_signatures(lm):
    from gemma_kit.shield.scoring import answer_ids
    from mobile_export import guard_graph

    shapes = {"prompt": {"suffix_tokens": 16, "signatures": {"screen_prompt_8": 8, "screen_prompt": 24}}}
    return lambda table: guard_graph.signatures(lm, answer_ids(lm.preprocessor.tokenizer), shapes, 2, table)


@pytest.mark.backends
@pytest.mark.skipif(keras.config.backend() != "tensorflow", reason="traces the graphs in this process")
@pytest.mark.parametrize("graph,int8", [("lm", False), ("lm", True), ("guard", False)])
def test_converter_without_extra_loads_writes_tensorflows_bytes(graph, int8, tmp_path, tiny_shield_folder):
    """`convert_saved_model` skips the converter's extra loads of the SavedModel and its
    pass that clamps infinite constants; the file is byte for byte the one TensorFlow's
    `from_saved_model` path writes, for the kit's language model graphs (float and
    int8 weights) and its classifier graph."""
    import tensorflow as tf

    from mobile_export.convert import _save, convert_saved_model

    lm = gemma_kit.load_model(str(tiny_shield_folder) if graph == "guard" else TINY)
    build = _guard_signatures(lm) if graph == "guard" else _lm_signatures(lm)
    keys = _save(lm, str(tmp_path), build, int8=int8)
    reference = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path), signature_keys=keys)
    reference.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    reference._experimental_disable_fuse_mul_and_fc = True
    assert reference.canonicalizing_inf_as_min_max_float  # TensorFlow's default: the pass runs there
    expected = reference.convert()
    assert convert_saved_model(str(tmp_path), keys) == expected
