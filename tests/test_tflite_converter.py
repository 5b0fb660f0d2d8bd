"""The kit's TFLite conversion call against TensorFlow's own converter path."""

import keras
import pytest
from conftest import FIXTURES

import gemma_kit

TINY = str(FIXTURES / "tiny_gemma2_f32.gguf")


@pytest.mark.backends
@pytest.mark.skipif(keras.config.backend() != "tensorflow", reason="traces the graphs in this process")
def test_converter_without_extra_loads_writes_tensorflows_bytes(tmp_path):
    """`convert_saved_model` skips the converter's extra loads of the SavedModel; the
    file is byte for byte the one TensorFlow's `from_saved_model` path writes."""
    import tensorflow as tf

    from mobile_export import graph
    from mobile_export.convert import _save, convert_saved_model

    lm = gemma_kit.load_model(TINY)
    keys = _save(lm, str(tmp_path), lambda table: graph.signatures(lm, (8,), 32, table), int8=False)
    reference = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path), signature_keys=keys)
    reference.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    reference._experimental_disable_fuse_mul_and_fc = True
    expected = reference.convert()
    assert convert_saved_model(str(tmp_path), keys) == expected
