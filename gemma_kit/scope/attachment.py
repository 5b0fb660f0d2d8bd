"""`attach`: SAEs inside a running Gemma, per site, in one of three modes.

- observe: record each site's raw activations and the SAE's latent activations; the
  model computes exactly what it did before.
- splice: replace the site by the SAE's reconstruction (with `add_error`, add back
  x - reconstruction, which leaves the model's output unchanged up to rounding and
  gives gradients/interventions a place to act on the latents).
- steer: add `coeff * W_dec[i]` for chosen latents, at every position or at the
  chosen positions of the sequence passed.

In splice mode, position 0 of a multi-token pass (BOS in every prompt the kit builds,
and the first pass of `generate()`) is left clean: Gemma Scope SAEs were not trained
there and its activations are huge. One-token passes (decode steps) are spliced.
Splice and steer are pure functions of the weights, so they work inside `generate()`.
Observe records in eager forward passes (`gemma_kit.logits`) and inside `generate()`
on every backend: JAX through a host callback, TensorFlow through `tf.numpy_function`,
which XLA cannot compile, so the model's `jit_compile` is off while observing (and
restored on detach).
`detach()` (or leaving the `with` block) restores the model's own layers exactly.
"""

import keras
import numpy as np

from gemma_kit.errors import GemmaKitError
from gemma_kit.scope import sites as site_lib

MODES = ("observe", "splice", "steer")


class Attachment:
    """What `attach` returns: `records` (observe mode) and `detach()`."""

    def __init__(self, causal_lm, saes, mode, add_error, steer, positions):
        if mode not in MODES:
            raise GemmaKitError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        self.causal_lm, self.mode = causal_lm, mode
        self.records = {}
        self._layers = []
        self._jit_compile = None
        if mode == "observe" and keras.config.backend() == "tensorflow":
            self._jit_compile, causal_lm.jit_compile = causal_lm.jit_compile, False
        try:
            for name, sae in saes.items():
                site = site_lib.parse_site(causal_lm, name)
                site_lib.check_sae(causal_lm, site, sae)
                fn = self._hook(str(site), sae, add_error, _for_site(steer, name), positions)
                self._layers.append(site_lib.install(causal_lm, site, fn))
        except Exception:
            self.detach()
            raise

    def _hook(self, name, sae, add_error, steer, positions):
        self.records[name] = {"activations": [], "latents": []}
        if self.mode == "observe":
            def observe(x):
                _record(self.records[name], x, sae.encode(x))
                return x
            return observe
        if self.mode == "splice":
            def splice(x):
                x_hat = keras.ops.cast(sae(x), x.dtype)
                if add_error:
                    x_hat = x_hat + (x - x_hat)
                length = keras.ops.shape(x)[1]
                keep = keras.ops.logical_and(keras.ops.arange(length) == 0, length > 1)
                return keras.ops.where(keep[None, :, None], x, x_hat)
            return splice
        direction = _steering_vector(sae, steer)

        def steer_fn(x):
            add = keras.ops.cast(direction, x.dtype)
            if positions is None:
                return x + add
            chosen = np.zeros(1 + max(positions), dtype=bool)
            chosen[list(positions)] = True
            length = keras.ops.shape(x)[1]
            mask = keras.ops.pad(keras.ops.convert_to_tensor(chosen), [[0, max(0, length - len(chosen))]])[:length]
            return x + keras.ops.cast(mask, x.dtype)[None, :, None] * add
        return steer_fn

    def detach(self):
        for layer in self._layers:
            site_lib.remove(self.causal_lm, layer)
        self._layers = []
        if self._jit_compile is not None:
            self.causal_lm.jit_compile, self._jit_compile = self._jit_compile, None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.detach()


def attach(causal_lm, saes, mode="observe", add_error=False, steer=None, positions=None):
    """Attach `{site: sae}` to the model (see module doc). `steer` is {latent: coeff}
    for every site, or {site: {latent: coeff}}."""
    return Attachment(causal_lm, saes, mode, add_error, steer, positions)


def _for_site(steer, name):
    """{latent: coeff} for this site, from a shared or a per-site mapping."""
    if steer and name in steer:
        return steer[name]
    return steer


def _steering_vector(sae, steer):
    if not steer:
        raise GemmaKitError("steer mode needs steer={latent index: coefficient}")
    w_dec = keras.ops.convert_to_numpy(keras.ops.cast(sae.W_dec, "float32"))
    vector = np.zeros(sae.d_in, dtype=np.float32)
    for latent, coeff in steer.items():
        if not isinstance(latent, (int, np.integer)) or not 0 <= latent < sae.d_sae:
            raise GemmaKitError(f"steering latent {latent!r} is not an index in 0..{sae.d_sae - 1}")
        vector += float(coeff) * w_dec[latent]
    return vector


def _record(store, x, latents):
    def save(x_value, f_value):
        store["activations"].append(np.asarray(x_value, dtype=np.float32))
        store["latents"].append(np.asarray(f_value, dtype=np.float32))

    backend = keras.config.backend()
    if backend == "jax":
        import jax

        if isinstance(x, jax.core.Tracer):
            jax.debug.callback(save, x, latents)
            return
    if backend == "tensorflow":
        import tensorflow as tf

        if not tf.executing_eagerly():
            def save_returning(x_value, f_value):
                save(x_value, f_value)
                return np.float32(0)

            # Stateful, so tf.function keeps it although nothing reads its output.
            tf.numpy_function(save_returning, [x, latents], tf.float32, stateful=True)
            return
    save(keras.ops.convert_to_numpy(keras.ops.cast(x, "float32")),
         keras.ops.convert_to_numpy(keras.ops.cast(latents, "float32")))
