"""Keras Gemma -> LiteRT `.tflite` with `prefill_{L}` / `decode` signatures, builtin
operators only: float32, dynamic int8 (`int8_graph`, `fold_dequant`: converted from
int8 weights, so a 2B fits in memory), or float16 / int4 weights from a
`mobile_export.quantize` recipe applied to the float32 model.

The signatures (`mobile_export.graph`) are saved as a SavedModel, whose variables stay
out of the graph proto (no 2 GB GraphDef limit), and converted with TFLite's converter
restricted to `TFLITE_BUILTINS`. The resulting operator list is checked: no Flex, no
custom ops. A quantized model's logits are measured against the Keras model's.
"""

import dataclasses
import os
import tempfile
import types

from gemma_kit import forward, runtime
from gemma_kit.errors import GemmaKitError
from gemma_kit.files import atomic_file
from gemma_kit.finetune import lora
from mobile_export import fold_dequant, graph, verify
from mobile_export.int8_graph import Int8Weights
from mobile_export.operators import check_builtin_only
from mobile_export.quantize import QUANTIZATION, quantize_weights

DEFAULT_PREFILL = (32, 128)
DEFAULT_KV_LEN = 1024
# What a quantized model's logits are measured on against the Keras model's.
SAMPLE_TEXT = ("The river town woke slowly. Fishermen pulled their boats onto the gravel, and the baker "
               "opened her shutters to let the smell of bread into the street. Children ran to school along "
               "the old stone wall, counting the gulls that sat on every post. By noon the market was full: "
               "farmers sold apples, cheese and honey, and a man with a cart repaired clocks for anyone who "
               "would wait. In the evening the lamps were lit one by one.")


@dataclasses.dataclass
class Exported:
    """An exported file; `error` is {signature: verify.logits_error} of its logits
    against the Keras model it came from, on `SAMPLE_TEXT` (empty for float32)."""

    path: str
    quantize: str = "none"
    error: dict = dataclasses.field(default_factory=dict)

    def __fspath__(self):
        return self.path

    __str__ = __fspath__

    @property
    def size(self):
        return os.path.getsize(self.path)


def to_tflite(causal_lm, path, prefill_lengths=DEFAULT_PREFILL, kv_len=DEFAULT_KV_LEN, quantize="none",
              in_place=False):
    """Write the model to `path` (atomically); return an `Exported`. `in_place`: int8
    export may quantize the model's own weights (Keras int8, freeing its float32 copy),
    for a model nothing else will use."""
    check_quantization(quantize, causal_lm)

    def build(table):
        return graph.signatures(causal_lm, prefill_lengths, kv_len, table)

    if quantize == "none":
        write_tflite(causal_lm, path, build)
        return Exported(os.fspath(path))
    ids = sample_ids(causal_lm)
    reference = forward.logits(causal_lm, [ids])[0]
    runtime.forget_compiled(causal_lm)  # the compiled forward pass holds every weight
    write_tflite(causal_lm, path, build, quantize, in_place)
    return Exported(os.fspath(path), quantize, verify.quantization_error(path, ids, reference))


def write_tflite(causal_lm, path, build, quantize="none", in_place=False):
    """Convert the signatures `build(table)` makes ({name: concrete function}; `table()`
    gives the embedding table to use, or None for the model's own) to `path`, builtin
    operators only, weights per `quantize`. int8 is converted from int8 weights
    (`int8_graph`), folded into dynamic-range weights; `in_place` lets a float model be
    quantized in Keras first, freeing its float32 weights (for a model nothing else
    will use). Other formats quantize the float32 file."""
    check_quantization(quantize, causal_lm)
    if quantize == "none":
        return _convert(causal_lm, path, build)
    if quantize == "int8" and in_place and not lora.quantized_modes(causal_lm):
        lora.quantize(causal_lm, "int8")
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(path))) as scratch:
        converted = _convert(causal_lm, os.path.join(scratch, "converted.tflite"), build, int8=quantize == "int8")
        if quantize == "int8":
            fold_dequant.fold(converted, path)
        else:
            quantize_weights(converted, path, quantize)
    return os.fspath(path)


def sample_ids(causal_lm):
    from gemma_kit.generation import encode_prompt

    return encode_prompt(causal_lm.preprocessor.tokenizer, SAMPLE_TEXT, as_chat=False)


def _convert(causal_lm, path, build, int8=False):
    with tempfile.TemporaryDirectory() as saved:
        signature_keys = _save(causal_lm, saved, build, int8)
        try:
            model = convert_saved_model(saved, signature_keys)
        except Exception as e:  # noqa: BLE001 - the converter raises many types
            raise GemmaKitError(f"TFLite conversion failed: {str(e)[-2000:]}") from None
    check_builtin_only(model, path)
    with atomic_file(path) as staging, open(staging, "wb") as f:
        f.write(model)
    return os.fspath(path)


def convert_saved_model(folder, signature_keys):
    """The flatbuffer of `TFLiteConverter.from_saved_model(folder, signature_keys)`,
    builtin operators only, made without the converter's pass over every constant's
    elements (below) and without its two extra loads of the whole SavedModel: one to
    list the signatures (named here already), one only to read the debug info that
    `tf.saved_model.save` did not write (an empty record stands in for it). Each load
    restores every weight and re-traces every function: 28 s of the 270M classifier's
    228 s export. The bytes are those of TensorFlow's own path."""
    import tensorflow as tf
    from tensorflow.core.framework import graph_debug_info_pb2
    from tensorflow.lite.python import lite

    lite.TFLiteConverterBase._set_original_model_type(lite.conversion_metadata_fb.ModelType.TF_SAVED_MODEL)
    converter = lite.TFLiteSavedModelConverterV2(saved_model_dir=folder, saved_model_tags={"serve"},
                                                 saved_model_exported_names=signature_keys)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    # Folding an RMSNorm scale into the next layer's weights multiplies the columns
    # that meet Gemma's massive activation dimensions by tiny factors; quantized,
    # those columns lose all precision and the error, times the massive activation,
    # wrecks the logits. Unfolded, the weights quantize well.
    converter._experimental_disable_fuse_mul_and_fc = True
    # The pass that turns infinite constants into the largest finite float reads every
    # element of every float constant, weights included, one APFloat at a time: 26 s of
    # the 270M classifier's 84 s conversion. The kit's graphs hold no infinite constant
    # (masks add a finite large negative), so it never changes a byte (tested against
    # TensorFlow's own path, which runs it).
    converter.canonicalizing_inf_as_min_max_float = False
    load = lite._load
    lite._load = lambda *args, **kwargs: types.SimpleNamespace(graph_debug_info=graph_debug_info_pb2.GraphDebugInfo())
    try:
        return converter.convert()
    finally:
        lite._load = load


def _save(causal_lm, folder, build, int8):
    """Save the signatures as a SavedModel in `folder`; return their names. The traced
    functions and int8 weight copies die with this call, before the converter runs."""
    import tensorflow as tf

    module = tf.Module()
    if int8:
        weights = Int8Weights(causal_lm.backbone)
        with weights.traced():
            functions = build(weights.table)
        module.weights = weights.variables
    else:
        functions = build(None)
        # The weights as variables of the module, so the SavedModel stores them beside the graph.
        module.weights = [v.value for v in causal_lm.backbone.weights]
    tf.saved_model.save(module, folder, signatures=functions)
    return list(functions)


def check_quantization(quantize, causal_lm=None):
    if quantize not in QUANTIZATION:
        raise GemmaKitError(f"quantization {quantize!r} is not one of {', '.join(QUANTIZATION)}")
    quantized = lora.quantized_modes(causal_lm) if causal_lm is not None else None
    if quantized and quantize != "int8":
        raise GemmaKitError(f"the model's weights are quantized in Keras ({', '.join(sorted(quantized))}): "
                            "export it with quantize='int8'")
