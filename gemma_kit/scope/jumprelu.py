"""`JumpReLUSAE`: the Gemma Scope sparse autoencoder as a Keras layer.

    encode: pre = x @ W_enc + b_enc;  f = pre * (pre > threshold)
    decode: x_hat = f @ W_dec + b_dec

It runs on raw site activations, as the released files do (their training-time
scaling and any pre-encoder bias are already folded into the weights).
"""

import keras

from gemma_kit.errors import GemmaKitError

PARAMETERS = ("W_enc", "W_dec", "b_enc", "b_dec", "threshold")


@keras.saving.register_keras_serializable(package="gemma_kit")
class JumpReLUSAE(keras.layers.Layer):
    """A JumpReLU SAE with `d_in` inputs and `d_sae` latents; `call` reconstructs."""

    def __init__(self, d_in, d_sae, initializers=None, **kwargs):
        """`initializers` ({parameter: callable(shape, dtype)}, default zeros) lets a
        loader fill each weight straight from its file, one array at a time."""
        super().__init__(**kwargs)
        self._initializers = initializers or {}
        if int(d_in) < 1 or int(d_sae) < 1:
            raise GemmaKitError(f"d_in and d_sae must be positive, found {d_in}, {d_sae}")
        self.d_in, self.d_sae = int(d_in), int(d_sae)
        self.build((None, self.d_in))

    def build(self, input_shape):
        if self.built:
            return
        shapes = self.parameter_shapes()
        for name in PARAMETERS:
            initializer = self._initializers.get(name, "zeros")
            setattr(self, name, self.add_weight(shape=shapes[name], initializer=initializer, name=name))
        self._initializers = {}  # drop the references to the source file
        self.built = True

    def parameter_shapes(self):
        return self.shapes(self.d_in, self.d_sae)

    @staticmethod
    def shapes(d_in, d_sae):
        return {"W_enc": (d_in, d_sae), "W_dec": (d_sae, d_in), "b_enc": (d_sae,), "b_dec": (d_in,),
                "threshold": (d_sae,)}

    def pre_activations(self, x):
        x = keras.ops.cast(x, self.compute_dtype)
        return keras.ops.matmul(x, self.W_enc) + self.b_enc

    def encode(self, x):
        """Latent activations [..., d_sae]."""
        pre = self.pre_activations(x)
        return pre * keras.ops.cast(pre > self.threshold, pre.dtype)

    def decode(self, f):
        """Reconstruction [..., d_in] from latent activations."""
        return keras.ops.matmul(keras.ops.cast(f, self.compute_dtype), self.W_dec) + self.b_dec

    def call(self, x):
        return self.decode(self.encode(x))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "d_in": self.d_in, "d_sae": self.d_sae}
