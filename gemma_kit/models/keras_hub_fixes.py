"""Corrections to keras-hub 0.32 (and the Keras it runs on) that every model the kit
loads goes through.

`GemmaDecoderBlock` and `Gemma3DecoderBlock` store the backbone's
`query_head_dim_normalize` but build their attention layer with `True` regardless.
The attention layer reads the flag at call time, so copying the block's value onto it
restores the query scale 1/sqrt(hidden/heads) of the 27B geometries
(query_pre_attn_scalar != head_dim). Other geometries are unchanged.

keras-hub builds a backbone with random weights and then overwrites every one of them
from the checkpoint. Drawing those random numbers is wasted work that grows with the
model (half of the 270M's load under JAX, where each differently shaped zeros
initializer also compiles its own XLA program); `placeholder_weights` builds with
zeros made by numpy instead.

Keras (and under TensorFlow, TensorFlow's own tracking too) wraps every list and dict
a layer is given, element by element, so a SentencePiece tokenizer's 262k-entry
vocabulary list and index cost 2.5 s (4.6 s under TensorFlow) to assign; they hold
no variables, so `set_proto` assigns them as they are.

Keras' TensorFlow `ops.slice` is `tf.slice`, whose start XLA treats as a compile-time
constant when it can trace it back to an input: a function compiled with
`jit_compile=True` that slices at an index it is given (the attention layers' sliding
window mask at the KV cache position) compiles once per index value, 15 s each on the
270M. `xla_dynamic_slice` makes it XLA's dynamic slice inside XLA-compiled functions,
as Keras' JAX backend does everywhere; elsewhere (TFLite export) it is unchanged.
"""

import contextlib
import functools

import numpy as np


def fix_attention_scale(backbone):
    for block in backbone.transformer_layers:
        block.attention.query_head_dim_normalize = block.query_head_dim_normalize
    return backbone


def _placeholder(shape, dtype=None):
    """Zeros from numpy: no random draw, and no XLA program per shape."""
    return np.zeros(shape, dtype)


@contextlib.contextmanager
def placeholder_weights():
    """While active, floating-point layer weights start as zeros, for a model whose
    weights are all about to be loaded. Under a Keras distribution (sharded
    variables) nothing changes: sharded layouts need their own initializers."""
    import keras

    if keras.distribution.distribution() is not None:
        yield
        return
    add_weight = keras.layers.Layer.add_weight

    def placeholder_add_weight(layer, *args, **kwargs):
        # An initializer passed positionally (Keras 2 style) is left as it is.
        dtype = kwargs.get("dtype") or layer.variable_dtype
        if len(args) < 2 and "float" in keras.backend.standardize_dtype(dtype):
            kwargs["initializer"] = _placeholder
        return add_weight(layer, *args, **kwargs)

    keras.layers.Layer.add_weight = placeholder_add_weight
    try:
        yield
    finally:
        keras.layers.Layer.add_weight = add_weight


def set_proto(tokenizer, proto):
    """`tokenizer.set_proto(proto)` without attribute tracking; returns `tokenizer`."""
    import keras
    from keras.src.utils.tracking import DotNotTrackScope

    with contextlib.ExitStack() as scopes:
        scopes.enter_context(DotNotTrackScope())
        if keras.backend.backend() == "tensorflow":
            from tensorflow.python.trackable.base import no_automatic_dependency_tracking_scope

            scopes.enter_context(no_automatic_dependency_tracking_scope(tokenizer))
        tokenizer.set_proto(proto)
    return tokenizer


@functools.cache
def xla_dynamic_slice():
    """Install Keras' TensorFlow `ops.slice` fix (once; see the module's docstring)."""
    import tensorflow as tf
    from keras.src.backend.tensorflow import core
    from tensorflow.compiler.tf2xla.python import xla
    from tensorflow.python.ops import control_flow_util

    keras_slice = core.slice

    def xla_aware_slice(inputs, start_indices, shape):
        if not control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()):
            return keras_slice(inputs, start_indices, shape)
        if tf.is_tensor(start_indices):
            start = tf.cast(start_indices, "int32")
        else:
            start = tf.stack([tf.cast(i, "int32") for i in start_indices])
        return xla.dynamic_slice(inputs, start, shape)

    core.slice = xla_aware_slice
