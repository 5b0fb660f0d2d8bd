"""`export`: a Gemma model (any `gemma_kit.load_model` source, or a loaded model) to a
`.tflite`, `.litertlm` or `.task` file.

The LiteRT graph is traced with TensorFlow. Under another Keras backend the work runs
in a child process with `KERAS_BACKEND=tensorflow`: a source is handed over as it is, a
loaded model as a keras-hub preset written to a temporary folder (LoRA adapters merged
on save).
"""

import dataclasses
import os
import sys
import tempfile

import keras

from gemma_kit.errors import GemmaKitError
from gemma_kit.files import check_output_file
from gemma_kit.models.info import check_gemma2_or_3
from gemma_kit.models.tokens import proto_bytes
from mobile_export import bundle, tf_process
from mobile_export.convert import DEFAULT_KV_LEN, DEFAULT_PREFILL, Exported, check_quantization, to_tflite
from mobile_export.graph import checked_lengths

FORMATS = ("tflite", "litertlm", "task")


def export(model, out, format=None, prefill_lengths=DEFAULT_PREFILL, kv_len=DEFAULT_KV_LEN, quantize="none"):
    """Write `out` (format from its extension unless given; weights per `quantize`, one
    of `quantize.QUANTIZATION`) and return an `Exported` (path, and for quantized weights
    the logits error against float32 per signature)."""
    out = os.fspath(out)
    format, lengths = check_export(out, format, prefill_lengths, kv_len, quantize)
    if keras.config.backend() != "tensorflow":
        return _in_tensorflow(model, out, format, lengths, kv_len, quantize)
    from gemma_kit.models import load_model

    # A model loaded here is this call's own, and int8 export may quantize it in place.
    owned = isinstance(model, (str, os.PathLike))
    causal_lm = load_model(model) if owned else model
    check_gemma2_or_3(causal_lm)
    if format == "tflite":
        return to_tflite(causal_lm, out, lengths, kv_len, quantize, in_place=owned)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(out))) as scratch:
        tflite = to_tflite(causal_lm, os.path.join(scratch, "model.tflite"), lengths, kv_len, quantize, in_place=owned)
        write_bundle(causal_lm, tflite.path, out, format, kv_len)
    return dataclasses.replace(tflite, path=out)


def check_export(out, format, prefill_lengths, kv_len, quantize):
    """(format, sorted prefill lengths) for `export`'s options, checked before any work
    (a TensorFlow process, a model load)."""
    format = format or os.path.splitext(os.fspath(out))[1].lstrip(".")
    if format not in FORMATS:
        raise GemmaKitError(f"{out}: unknown export format {format!r}; use one of {', '.join(FORMATS)}")
    check_output_file(out)
    check_quantization(quantize)
    return format, checked_lengths(prefill_lengths, kv_len)


def write_bundle(causal_lm, tflite_path, out, format, kv_len):
    """Bundle an exported `.tflite` with the model's tokenizer as `.task` or `.litertlm`."""
    tokenizer = causal_lm.preprocessor.tokenizer
    proto = proto_bytes(tokenizer)
    if format == "task":
        return bundle.write_task(out, tflite_path, proto)
    ids = {piece: int(tokenizer.token_to_id(piece)) for piece in (bundle.START, *bundle.STOPS)}
    return bundle.write_litertlm(out, tflite_path, proto, ids, kv_len)


def _in_tensorflow(model, out, format, lengths, kv_len, quantize):
    args = [out, format, ",".join(map(str, lengths)), kv_len, quantize]
    return Exported(**tf_process.run("mobile_export.export", model, args, check_gemma2_or_3))


def _main(argv):
    source, out, format, lengths, kv_len, quantize = argv
    return tf_process.child_main(lambda: dataclasses.asdict(
        export(source, out, format, [int(n) for n in lengths.split(",")], int(kv_len), quantize)))


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
