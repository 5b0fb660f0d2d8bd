"""Keras Gemma -> LiteRT `.tflite` with `prefill_{L}` / `decode` signatures, builtin
operators only.

The signatures (`mobile_export.graph`) are saved as a SavedModel, whose variables stay
out of the graph proto (no 2 GB GraphDef limit), and converted with TFLite's converter
restricted to `TFLITE_BUILTINS`. The resulting operator list is checked: no Flex, no
custom ops.
"""

import os
import tempfile

from gemma_kit.errors import GemmaKitError
from gemma_kit.files import atomic_file
from mobile_export import graph
from mobile_export.operators import check_builtin_only

DEFAULT_PREFILL = (32, 128)
DEFAULT_KV_LEN = 1024
# Weight formats TFLite's converter writes itself: float16 weights, or int8 weights per
# channel with float activations (dynamic range).
QUANTIZATION = ("none", "fp16", "int8")


def to_tflite(causal_lm, path, prefill_lengths=DEFAULT_PREFILL, kv_len=DEFAULT_KV_LEN, quantize="none"):
    """Write the model to `path` (atomically) and return `path`."""
    import tensorflow as tf

    check_quantization(quantize)
    functions = graph.signatures(causal_lm, prefill_lengths, kv_len)
    module = tf.Module()
    # The weights as variables of the module, so the SavedModel stores them beside the graph.
    module.weights = [v.value for v in causal_lm.backbone.weights]
    with tempfile.TemporaryDirectory() as saved:
        tf.saved_model.save(module, saved, signatures=functions)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=list(functions))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "fp16":
            converter.target_spec.supported_types = [tf.float16]
        try:
            model = converter.convert()
        except Exception as e:  # noqa: BLE001 - the converter raises many types
            raise GemmaKitError(f"TFLite conversion failed: {str(e)[-2000:]}") from None
    check_builtin_only(model, path)
    with atomic_file(path) as staging, open(staging, "wb") as f:
        f.write(model)
    return os.fspath(path)


def check_quantization(quantize):
    if quantize not in QUANTIZATION:
        raise GemmaKitError(f"quantization {quantize!r} is not one of {', '.join(QUANTIZATION)}")
