"""Keras Gemma -> LiteRT `.tflite` with `prefill_{L}` / `decode` signatures, builtin
operators only, float32 or with the weights of a `mobile_export.quantize` recipe.

The signatures (`mobile_export.graph`) are saved as a SavedModel, whose variables stay
out of the graph proto (no 2 GB GraphDef limit), and converted with TFLite's converter
restricted to `TFLITE_BUILTINS`. The resulting operator list is checked: no Flex, no
custom ops. A quantized model is made from the float32 one and measured against it.
"""

import dataclasses
import os
import tempfile

from gemma_kit.errors import GemmaKitError
from gemma_kit.files import atomic_file
from mobile_export import graph, verify
from mobile_export.operators import check_builtin_only
from mobile_export.quantize import RECIPES, quantize_weights

DEFAULT_PREFILL = (32, 128)
DEFAULT_KV_LEN = 1024
QUANTIZATION = ("none", *RECIPES)
# What the quantized model's logits are measured on against float32.
SAMPLE_TEXT = ("The river town woke slowly. Fishermen pulled their boats onto the gravel, and the baker "
               "opened her shutters to let the smell of bread into the street. Children ran to school along "
               "the old stone wall, counting the gulls that sat on every post. By noon the market was full: "
               "farmers sold apples, cheese and honey, and a man with a cart repaired clocks for anyone who "
               "would wait. In the evening the lamps were lit one by one.")


@dataclasses.dataclass
class Exported:
    """An exported file; `error` is {signature: verify.logits_error} of its logits
    against the float32 export (empty for float32)."""

    path: str
    quantize: str = "none"
    error: dict = dataclasses.field(default_factory=dict)

    def __fspath__(self):
        return self.path

    __str__ = __fspath__

    @property
    def size(self):
        return os.path.getsize(self.path)


def to_tflite(causal_lm, path, prefill_lengths=DEFAULT_PREFILL, kv_len=DEFAULT_KV_LEN, quantize="none"):
    """Write the model to `path` (atomically); return an `Exported`."""
    check_quantization(quantize)
    if quantize == "none":
        _convert(causal_lm, path, prefill_lengths, kv_len)
        return Exported(os.fspath(path))
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(path))) as scratch:
        reference = _convert(causal_lm, os.path.join(scratch, "float32.tflite"), prefill_lengths, kv_len)
        quantize_weights(reference, path, quantize)
        error = verify.quantization_error(reference, path, sample_ids(causal_lm))
    return Exported(os.fspath(path), quantize, error)


def sample_ids(causal_lm):
    from gemma_kit.generation import encode_prompt

    return encode_prompt(causal_lm.preprocessor.tokenizer, SAMPLE_TEXT, as_chat=False)


def _convert(causal_lm, path, prefill_lengths, kv_len):
    import tensorflow as tf

    functions = graph.signatures(causal_lm, prefill_lengths, kv_len)
    module = tf.Module()
    # The weights as variables of the module, so the SavedModel stores them beside the graph.
    module.weights = [v.value for v in causal_lm.backbone.weights]
    with tempfile.TemporaryDirectory() as saved:
        tf.saved_model.save(module, saved, signatures=functions)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=list(functions))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        # Folding an RMSNorm scale into the next layer's weights multiplies the columns
        # that meet Gemma's massive activation dimensions by tiny factors; quantized,
        # those columns lose all precision and the error, times the massive activation,
        # wrecks the logits. Unfolded, the weights quantize well.
        converter._experimental_disable_fuse_mul_and_fc = True
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
