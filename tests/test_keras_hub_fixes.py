"""The kit's corrections to how keras-hub builds a model it is about to load: weights
start as placeholders instead of random draws, and a tokenizer's vocabulary is
assigned untracked. The loaded model must not show either."""

import keras
import pytest
import numpy as np
from conftest import FIXTURES

from gemma_kit.models.keras_hub_fixes import placeholder_weights, set_proto

TINY = FIXTURES / "tiny_gemma2_f32.gguf"


def test_placeholder_weights_are_zeros_only_inside_the_scope():
    add_weight = keras.layers.Layer.add_weight
    with placeholder_weights():
        inside = keras.layers.Dense(4)
        inside.build((None, 8))
        counter = keras.layers.Layer()
        steps = counter.add_weight(shape=(), initializer="ones", dtype="int32", trainable=False)
    assert keras.layers.Layer.add_weight is add_weight
    assert not np.any(keras.ops.convert_to_numpy(inside.kernel))
    assert int(keras.ops.convert_to_numpy(steps)) == 1  # not a float weight: its initializer runs
    outside = keras.layers.Dense(4)
    outside.build((None, 8))
    assert np.all(keras.ops.convert_to_numpy(outside.kernel) != 0)


def test_no_loaded_weight_is_left_a_placeholder():
    """Every variable of a model loaded from a random-weight GGUF holds the file's
    values (an all-zero one would be a weight the loader never wrote)."""
    import gemma_kit

    lm = gemma_kit.load_model(str(TINY))
    empty = [v.path for v in lm.backbone.weights if not np.any(keras.ops.convert_to_numpy(v))]
    assert not empty


def test_untracked_tokenizer_equals_keras_hubs_own(tiny_tokenizer_model):
    import keras_hub

    own = keras_hub.models.GemmaTokenizer(proto=tiny_tokenizer_model)
    ours = set_proto(keras_hub.models.GemmaTokenizer(proto=None), tiny_tokenizer_model)
    assert ours.get_vocabulary() == own.get_vocabulary()
    assert (ours.start_token_id, ours.end_token_id, ours.pad_token_id) == (own.start_token_id, own.end_token_id,
                                                                        own.pad_token_id)
    text = "ab ba aab"
    assert keras.ops.convert_to_numpy(ours(text)).tolist() == keras.ops.convert_to_numpy(own(text)).tolist()
    assert ours.detokenize(own(text)) == own.detokenize(own(text))


@pytest.mark.backends
@pytest.mark.skipif(keras.config.backend() != "tensorflow", reason="Keras' TensorFlow slice under XLA")
def test_a_compiled_decode_step_serves_every_cache_index():
    """The kit's XLA-compiled functions take the KV cache position as an input: one
    compiled program serves every position (without `xla_dynamic_slice`, XLA folds the
    position into the program, one compilation per position), with the same logits as
    the uncompiled step."""
    import tensorflow as tf

    import gemma_kit
    from gemma_kit import runtime

    lm = gemma_kit.load_model(str(TINY))

    def step(token_ids, cache, index):
        return lm.call_with_cache(token_ids, cache, index)[0]

    compiled = runtime.compile_fn(lm, step)
    ids, cache = np.array([[5]], "int32"), runtime.model_cache(lm, runtime.layer_caches(lm, 1, 16))
    programs = {compiled.experimental_get_compiler_ir(ids, cache, tf.constant(i))(stage="hlo") for i in (3, 9)}
    assert len(programs) == 1
    for i in (3, 9):
        np.testing.assert_allclose(compiled(ids, cache, tf.constant(i)), step(ids, cache, tf.constant(i)), atol=1e-5)
