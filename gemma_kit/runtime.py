"""What generation and scoring share below keras-hub's task API: backend-compiled
functions of a model's weights, and KV caches in the layout its decoder blocks take."""

import keras


def compile_fn(model, fn):
    """`fn(*args)` compiled for the Keras backend, reading `model`'s current weights.

    JAX traces a pure function of the weight values (so later weight updates are
    seen), TensorFlow uses XLA, PyTorch runs eagerly without autograd. Each new
    input shape compiles once; callers bucket their shapes.
    """
    backend = keras.config.backend()
    if backend == "jax":
        import jax

        variables = model.variables

        @jax.jit
        def pure(values, *args):
            with keras.StatelessScope(state_mapping=zip(variables, values)):
                return fn(*args)

        return lambda *args: pure([v.value for v in variables], *args)
    if backend == "tensorflow":
        import tensorflow as tf

        from gemma_kit.models.keras_hub_fixes import xla_dynamic_slice

        xla_dynamic_slice()  # else each cache index a function is given compiles anew
        return tf.function(fn, jit_compile=True, reduce_retracing=True)
    if backend == "torch":
        import torch

        def no_grad(*args):
            with torch.no_grad():
                return fn(*args)

        return no_grad
    return fn


def cached(model, name, build):
    """`build()` once per model, kept on the model so compiled code outlives one call."""
    _CACHED.add(name)
    attribute = f"_gemma_kit_{name}"
    if getattr(model, attribute, None) is None:
        setattr(model, attribute, build())
    return getattr(model, attribute)


def forget_compiled(causal_lm):
    """Drop compiled functions (keras-hub's generate, the kit's cached ones): they were
    traced with the layers as they were, and a hook added or removed must be seen."""
    causal_lm.generate_function = None
    for name in _CACHED:
        setattr(causal_lm, f"_gemma_kit_{name}", None)


_CACHED = set()


def is_gemma3(causal_lm):
    import keras_hub

    return isinstance(causal_lm, (keras_hub.models.Gemma3CausalLM, keras_hub.models.Gemma3Backbone))


def layer_caches(causal_lm, batch, length, zero=0):
    """Zero KV caches, one per decoder block, in the form that block's `call` takes:
    a (key, value) pair for Gemma 3, one [batch, 2, length, kv_heads, head_dim]
    tensor for Gemma 2. `zero` may be a tensor computed from the inputs, so that a
    traced graph fills the caches at run time instead of storing them as constants."""
    backbone = causal_lm.backbone
    shape = (batch, length, backbone.num_key_value_heads, backbone.head_dim)
    dtype = backbone.compute_dtype
    if is_gemma3(causal_lm):
        return [(keras.ops.full(shape, zero, dtype), keras.ops.full(shape, zero, dtype))
                for _ in range(backbone.num_layers)]
    return [keras.ops.full((batch, 2, *shape[1:]), zero, dtype) for _ in range(backbone.num_layers)]


def model_cache(causal_lm, caches):
    """Per-block caches in the layout the task's `call_with_cache` takes."""
    return tuple(caches) if is_gemma3(causal_lm) else keras.ops.stack(caches, axis=1)


def run_blocks(backbone, x, caches=None, index=0):
    """Embedded inputs through every decoder block: (x, new caches), causal attention.

    Without caches this is the plain forward pass; right padding needs no mask here
    because a real token never attends to the padding after it.
    """
    new_caches = []
    for i, block in enumerate(backbone.transformer_layers):
        if caches is None:
            x = block(x)
        else:
            x, cache = block(x, cache=caches[i], cache_update_index=index)
            new_caches.append(cache)
    return x, new_caches


def embed(backbone, token_ids):
    x = backbone.token_embedding(token_ids)
    return x * keras.ops.cast(keras.ops.sqrt(backbone.hidden_dim), x.dtype)
