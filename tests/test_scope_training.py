"""train_sae recovers a planted sparse dictionary."""

import keras
import numpy as np
import pytest

from gemma_kit.scope import load_sae, save_sae, train_sae

pytestmark = pytest.mark.backends


def planted(n_features=48, d_in=32, tokens=40000, per_token=3, seed=1):
    rng = np.random.default_rng(seed)
    dictionary = rng.normal(size=(n_features, d_in))
    dictionary /= np.linalg.norm(dictionary, axis=1, keepdims=True)
    active = rng.random((tokens, n_features)) < per_token / n_features
    x = (rng.uniform(1, 3, (tokens, n_features)) * active) @ dictionary + 0.01 * rng.normal(size=(tokens, d_in))
    return dictionary, active, (5 * x).astype("float32")  # not unit scale: the fold must undo it


def test_training_recovers_planted_features(tmp_path):
    dictionary, active, x = planted()
    sae, history = train_sae(x, 96, l0_coefficient=0.05, bandwidth=0.05, epochs=40, batch_size=256,
                             learning_rate=3e-3, lr_warmup_steps=100, l0_warmup_steps=500, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    decoder = keras.ops.convert_to_numpy(sae.W_dec)
    decoder /= np.linalg.norm(decoder, axis=1, keepdims=True)
    assert (dictionary @ decoder.T).max(axis=1).mean() >= 0.9  # mean max cosine
    f = keras.ops.convert_to_numpy(sae.encode(x))  # raw activations: the scale is folded in
    l0, true_l0 = (f > 0).sum(axis=1).mean(), active.sum(axis=1).mean()
    assert abs(l0 - true_l0) <= 1.0, (l0, true_l0)
    x_hat = keras.ops.convert_to_numpy(sae.decode(f))
    assert ((x - x_hat) ** 2).sum() / ((x - x.mean(0)) ** 2).sum() < 0.2
    save_sae(sae, tmp_path / "sae", hf_hook_point_in="model.layers.3.output")
    again = load_sae(tmp_path / "sae")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again.encode(x[:50])), f[:50], atol=1e-5)
