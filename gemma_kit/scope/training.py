"""`train_sae`: a JumpReLU SAE trained with `model.fit`, following the Gemma Scope recipe
(paper section 3.2):

- loss ||x - x_hat||^2 + lambda * ||f||_0, lambda warmed up linearly;
- the threshold learns through straight-through pseudo-derivatives with a rectangle
  kernel of bandwidth eps (d/dtheta of JumpReLU = -(theta/eps) K, of the step
  = -(1/eps) K, nothing to x through the step);
- decoder rows kept at unit norm, the gradient's component along each row removed
  (the forward pass uses the row-normalised decoder, so its gradient is the projected
  one, and a unit-norm constraint holds the rows on the sphere after each step);
- W_enc initialised to W_dec^T, biases 0, threshold 0.001; Adam with beta_1 = 0 and a
  cosine schedule that warms up from 0.1 x the learning rate;
- activations scaled by a constant so that E||x||^2 = 1, folded into the returned
  weights, which therefore run on raw activations like the released SAEs.

The straight-through estimators are written with stop_gradient, so the same code
trains on JAX, TensorFlow and PyTorch.
"""

import keras
import numpy as np

from gemma_kit.errors import GemmaKitError
from gemma_kit.scope.jumprelu import JumpReLUSAE


class _RowUnitNorm(keras.constraints.Constraint):
    def __call__(self, w):
        return w / keras.ops.maximum(keras.ops.norm(w, axis=1, keepdims=True), 1e-12)


class JumpReLUTrainer(keras.Model):
    """The training-time SAE: call(x) returns x_hat and adds the loss."""

    def __init__(self, d_in, d_sae, l0_coefficient, l0_warmup_steps, bandwidth, seed, **kwargs):
        super().__init__(**kwargs)
        self.d_in, self.d_sae = d_in, d_sae
        self.l0_coefficient, self.l0_warmup_steps, self.bandwidth = l0_coefficient, l0_warmup_steps, bandwidth
        rng = np.random.default_rng(seed)
        w_dec = rng.normal(size=(d_sae, d_in)).astype("float32")
        w_dec /= np.linalg.norm(w_dec, axis=1, keepdims=True)
        self.W_dec = self.add_weight(shape=(d_sae, d_in), initializer=lambda *a, **k: w_dec,
                                     constraint=_RowUnitNorm(), name="W_dec")
        self.W_enc = self.add_weight(shape=(d_in, d_sae), initializer=lambda *a, **k: w_dec.T.copy(), name="W_enc")
        self.b_enc = self.add_weight(shape=(d_sae,), initializer="zeros", name="b_enc")
        self.b_dec = self.add_weight(shape=(d_in,), initializer="zeros", name="b_dec")
        self.log_threshold = self.add_weight(shape=(d_sae,), initializer=keras.initializers.Constant(np.log(1e-3)),
                                             name="log_threshold")
        # Counted here rather than read from the optimizer, which may not exist yet
        # when Keras first traces `call`.
        self.step = self.add_weight(shape=(), initializer="zeros", trainable=False, name="step")

    def call(self, x, training=False):
        sg = keras.ops.stop_gradient
        pre = keras.ops.matmul(x, self.W_enc) + self.b_enc
        threshold = keras.ops.exp(self.log_threshold)
        step = keras.ops.cast(pre > threshold, pre.dtype)
        kernel = keras.ops.cast(keras.ops.abs((sg(pre) - sg(threshold)) / self.bandwidth) < 0.5, pre.dtype)
        # Value: the plain step / JumpReLU. Gradient w.r.t. theta: the pseudo-derivatives.
        theta_term = -(sg(threshold) / self.bandwidth) * kernel * threshold
        f = pre * sg(step) + theta_term - sg(theta_term)
        step_term = -(kernel / self.bandwidth) * threshold
        l0 = keras.ops.sum(sg(step) + step_term - sg(step_term), axis=-1)
        decoder = self.W_dec / keras.ops.norm(self.W_dec, axis=1, keepdims=True)
        x_hat = keras.ops.matmul(f, decoder) + self.b_dec
        reconstruction = keras.ops.sum(keras.ops.square(x - x_hat), axis=-1)
        if training:
            self.step.assign_add(1.0)
        progress = self.step / max(1, self.l0_warmup_steps)
        lam = self.l0_coefficient * keras.ops.minimum(1.0, progress)
        self.add_loss(keras.ops.mean(reconstruction + lam * l0))
        return x_hat


def train_sae(activations, d_sae, l0_coefficient=1e-3, epochs=1, batch_size=4096, learning_rate=7e-5,
              lr_warmup_steps=1000, l0_warmup_steps=10000, bandwidth=1e-3, seed=0, verbose="auto",
              callbacks=None):
    """Train on activations [N, d_in] (raw; scaled internally) and return a `JumpReLUSAE`
    that runs on raw activations, plus the Keras `History`."""
    x = np.asarray(activations, dtype=np.float32)
    if x.ndim != 2 or len(x) < 2:
        raise GemmaKitError(f"activations must be [tokens, d_in] with at least 2 rows, found shape {x.shape}")
    keras.utils.set_random_seed(seed)
    scale = float(1.0 / np.sqrt(np.mean(np.sum(x.astype(np.float64) ** 2, axis=1))))
    steps = epochs * -(-len(x) // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.1 * learning_rate, warmup_target=learning_rate,
        warmup_steps=min(lr_warmup_steps, steps // 2), decay_steps=max(1, steps - min(lr_warmup_steps, steps // 2)),
        alpha=0.1)
    trainer = JumpReLUTrainer(x.shape[1], d_sae, l0_coefficient, l0_warmup_steps, bandwidth, seed)
    trainer.compile(optimizer=keras.optimizers.Adam(schedule, beta_1=0.0, beta_2=0.999))
    history = trainer.fit(x * scale, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=verbose,
                          callbacks=callbacks)
    return fold_scale(trainer, scale), history


def fold_scale(trainer, scale):
    """A `JumpReLUSAE` on raw activations from one trained on activations x `scale`."""
    numpy = {v.name: keras.ops.convert_to_numpy(v) for v in trainer.weights}
    decoder = numpy["W_dec"] / np.linalg.norm(numpy["W_dec"], axis=1, keepdims=True)
    sae = JumpReLUSAE(trainer.d_in, trainer.d_sae)
    sae.W_enc.assign(numpy["W_enc"] * scale)
    sae.b_enc.assign(numpy["b_enc"])
    sae.threshold.assign(np.exp(numpy["log_threshold"]))
    sae.W_dec.assign(decoder / scale)
    sae.b_dec.assign(numpy["b_dec"] / scale)
    return sae
