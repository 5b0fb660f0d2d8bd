"""Dynamic int8 weights traced into the graph, so that converting a model never holds
its float32 weights: what lets a Gemma 2 2B convert within 24 GB.

TFLite's converter keeps several copies of every constant it converts (about 5.5 bytes
of memory per float32 weight byte, measured), and a float32 model quantized afterwards
must first be converted whole. Here each matmul weight enters the graph as an int8
[out, in] matrix and a per-output-channel scale, `cast(q) * scale`, so the converter
only copies int8 bytes; `fold_dequant` then makes each such weight the int8 weight of
its FULLY_CONNECTED or EMBEDDING_LOOKUP: the layout of LiteRT's dynamic-range kernels,
as ai-edge-quantizer's dynamic int8 recipe writes it.

The int8 values come from the model as it is: a Keras int8 model (`backbone.quantize`,
as the kit's QLoRA base and `export` of a loaded source make) gives its own, whose
per-channel scales are this layout's, with a QLoRA adapter merged and re-quantized; a
float model (LoRA adapters included) is quantized here, per output channel.
"""

import contextlib
import math

import keras
import numpy as np

from gemma_kit.errors import GemmaKitError
from gemma_kit.models.layout import as_matrix, matrix_form


def quantize_rows(matrix, chunk=4096):
    """Symmetric int8 per row: (q int8, scale float32 [rows]) with matrix ~ q * scale.
    Done in chunks of rows, so a 256k-row embedding needs no full-size temporaries."""
    q, scale = np.empty(matrix.shape, np.int8), np.empty(matrix.shape[0], np.float32)
    for start in range(0, matrix.shape[0], chunk):
        rows = np.asarray(matrix[start : start + chunk], np.float32)
        step = np.abs(rows).max(axis=1) / 127.0
        step[step == 0] = 1.0
        q[start : start + chunk] = np.clip(np.round(rows / step[:, None]), -127, 127)
        scale[start : start + chunk] = step
    return q, scale


class Int8Weights:
    """The int8 [out, in] weights and scales of a backbone's projections and embedding,
    as TensorFlow variables, and the trace-time swap that makes the model use them."""

    def __init__(self, backbone):
        import tensorflow as tf

        layers = [layer for layer in backbone._flatten_layers(include_self=False)
                  if isinstance(layer, keras.layers.EinsumDense)]
        replaced = [*layers, backbone.token_embedding]
        # The norms' scales and the like, which the graph reads as they are.
        self.kept = [v for v in backbone.weights if not any(v is w for layer in replaced for w in layer.weights)]
        self.dense = []
        for layer in layers:
            order, n_free = matrix_form(layer.equation)
            if layer.bias is not None or layer.activation is not keras.activations.linear:
                raise GemmaKitError(f"int8 export: {layer.path} has a bias or activation")
            shape = [layer._kernel.shape[i] for i in order]
            rows = math.prod(shape[:n_free])
            if layer.quantization_mode == "int8":
                q = as_matrix(layer._kernel, order, rows)
                scale = 1.0 / np.asarray(layer.kernel_scale, np.float32).reshape(-1)
                if scale.size != rows:
                    raise GemmaKitError(f"int8 export: {layer.path} has {scale.size} kernel scales, not one per "
                                        f"output channel ({rows})")
                if layer.lora_enabled:  # a QLoRA adapter: merged into the dequantized weights
                    lora = np.matmul(np.asarray(layer.lora_kernel_a), np.asarray(layer.lora_kernel_b))
                    merged = q * scale[:, None] + as_matrix(lora * (layer.lora_alpha / layer.lora_rank), order, rows)
                    q, scale = quantize_rows(merged)
            elif layer.quantization_mode is None:
                q, scale = quantize_rows(as_matrix(layer.kernel, order, rows))  # `kernel` includes a LoRA adapter
            else:
                raise GemmaKitError(f"int8 export: {layer.path} is quantized as {layer.quantization_mode}; "
                                    "export takes float or Keras int8 weights")
            self.dense.append((layer, tf.Variable(q, trainable=False), tf.Variable(scale[:, None], trainable=False),
                               shape[:n_free], len(order) - n_free))
        embedding = backbone.token_embedding
        if embedding.lora_enabled or embedding.quantization_mode not in (None, "int8"):
            raise GemmaKitError("int8 export: the token embedding must be float or Keras int8, without a LoRA "
                                f"adapter (found {embedding.quantization_mode or 'float'}, "
                                f"LoRA {'on' if embedding.lora_enabled else 'off'})")
        if embedding.quantization_mode == "int8":  # already [vocab, hidden] per row: used as it is
            self.table_q = embedding._embeddings.value
            scale = 1.0 / np.asarray(embedding.embeddings_scale, np.float32)
        else:
            q, scale = quantize_rows(np.asarray(embedding.embeddings, np.float32))
            self.table_q = tf.Variable(q, trainable=False)
        self.table_scale = tf.Variable(scale[:, None], trainable=False)

    @property
    def variables(self):
        found = [self.table_q, self.table_scale]
        for _, q, scale, *_ in self.dense:
            found += [q, scale]
        return found + [v.value for v in self.kept]

    def table(self, ids=None):
        """The dequantized embedding table, or only its rows `ids` (gathered while int8)."""
        import tensorflow as tf

        q, scale = self.table_q, self.table_scale
        if ids is not None:
            q, scale = tf.gather(q, ids), tf.gather(scale, ids)
        return tf.cast(q, tf.float32) * scale

    @contextlib.contextmanager
    def traced(self):
        """While tracing: every projection computes x @ (cast(q) * scale)^T."""
        patched = []
        try:
            for layer, *matrix in self.dense:
                call = _matmul(*matrix)
                for name in ("call", "quantized_call"):
                    object.__setattr__(layer, name, call)
                patched.append(layer)
            yield self
        finally:
            for layer in patched:
                for name in ("call", "quantized_call"):
                    layer.__dict__.pop(name, None)


def _matmul(q, scale, free_shape, n_contracted):
    def call(inputs, *args, **kwargs):
        import tensorflow as tf

        flat = tf.reshape(inputs, [-1, q.shape[1]])
        out = tf.matmul(flat, tf.cast(q, inputs.dtype) * tf.cast(scale, inputs.dtype), transpose_b=True)
        return tf.reshape(out, tf.concat([tf.shape(inputs)[:-n_contracted], free_shape], axis=0))

    return call
