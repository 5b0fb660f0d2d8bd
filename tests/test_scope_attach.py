"""attach(): observe, splice and steer inside a running model; detach restores it."""

import keras
import numpy as np
import pytest
from conftest import FIXTURES

import gemma_kit
from gemma_kit.errors import GemmaKitError
from gemma_kit.generation import generate_ids
from gemma_kit.scope import JumpReLUSAE, site_activations
from gemma_kit.scope.attachment import attach

pytestmark = pytest.mark.backends
IDS = np.array([[2, 40, 50, 60, 70, 80, 90], [2, 41, 51, 61, 71, 81, 91]])


@pytest.fixture(scope="module")
def lm():
    return gemma_kit.load_model(str(FIXTURES / "tiny_gemma2_f32.gguf"))


def random_sae(d_in, d_sae=128, seed=0):
    rng = np.random.default_rng(seed)
    sae = JumpReLUSAE(d_in, d_sae)
    for name, value in [("W_enc", rng.normal(0, 0.2, (d_in, d_sae))), ("W_dec", rng.normal(0, 0.2, (d_sae, d_in))),
                        ("b_enc", rng.normal(0, 0.1, d_sae)), ("b_dec", rng.normal(0, 0.1, d_in)),
                        ("threshold", np.full(d_sae, 0.1))]:
        getattr(sae, name).assign(value.astype("float32"))
    return sae


@pytest.mark.parametrize("site", ["1.res", "2.att", "3.mlp"])
def test_splice_with_error_term_keeps_logits_and_detach_restores(lm, site):
    clean = gemma_kit.logits(lm, IDS)
    sae = random_sae(64)
    with attach(lm, {site: sae}, "splice", add_error=True):
        assert np.abs(gemma_kit.logits(lm, IDS) - clean).max() <= 1e-4
    with attach(lm, {site: sae}, "splice"):
        assert np.abs(gemma_kit.logits(lm, IDS) - clean).max() > 1e-2  # the reconstruction is not the site
    np.testing.assert_array_equal(gemma_kit.logits(lm, IDS), clean)  # detached: bit for bit


def test_observe_records_site_and_latents(lm):
    sae = random_sae(64)
    clean = gemma_kit.logits(lm, IDS)
    with attach(lm, {"1.res": sae}, "observe") as attached:
        np.testing.assert_array_equal(gemma_kit.logits(lm, IDS), clean)
    record = attached.records["1.res"]
    expected = site_activations(lm, IDS, ["1.res"])["1.res"]
    np.testing.assert_allclose(record["activations"][0], expected, atol=1e-6)
    np.testing.assert_allclose(record["latents"][0], keras.ops.convert_to_numpy(sae.encode(expected)), atol=1e-5)


def test_steering_moves_generation_towards_the_direction(lm):
    """A latent whose decoder row is token 300's embedding, added at the last block,
    makes greedy decoding say token 300."""
    last = lm.backbone.num_layers - 1
    embedding = keras.ops.convert_to_numpy(lm.backbone.token_embedding.embeddings)
    sae = random_sae(64)
    w_dec = keras.ops.convert_to_numpy(sae.W_dec)
    w_dec[5] = embedding[300] / np.linalg.norm(embedding[300])
    sae.W_dec.assign(w_dec)
    prompt = [2, 40, 50, 60]
    before = generate_ids(lm, [prompt], 6)[0]
    assert before.count(300) == 0
    with attach(lm, {f"{last}.res": sae}, "steer", steer={5: 200.0}):
        steered = generate_ids(lm, [prompt], 6)[0]
    assert steered.count(300) >= 5
    assert generate_ids(lm, [prompt], 6)[0] == before


def test_steer_at_chosen_positions(lm):
    sae = random_sae(64)
    clean = gemma_kit.logits(lm, IDS)
    with attach(lm, {"1.res": sae}, "steer", steer={"1.res": {3: 20.0}}, positions=[4]):
        steered = gemma_kit.logits(lm, IDS)
    np.testing.assert_allclose(steered[:, :4], clean[:, :4], atol=1e-5)  # causal: earlier positions untouched
    assert np.abs(steered[:, 4] - clean[:, 4]).max() > 1e-2


def test_refusals(lm):
    with pytest.raises(GemmaKitError, match="d_in 32, but the site is 64 wide"):
        attach(lm, {"1.res": random_sae(32)})
    with pytest.raises(GemmaKitError, match="mode 'watch'"):
        attach(lm, {"1.res": random_sae(64)}, "watch")
    with pytest.raises(GemmaKitError, match="latent 999"):
        attach(lm, {"1.res": random_sae(64)}, "steer", steer={999: 1.0})
    with attach(lm, {"1.res": random_sae(64)}):
        with pytest.raises(GemmaKitError, match="already has a hook"):
            attach(lm, {"1.res": random_sae(64)})
    assert "call" not in lm.backbone.transformer_layers[1].__dict__


def test_evaluate_metrics_by_hand(lm):
    from gemma_kit.scope.metrics import evaluate

    sae = random_sae(64)
    texts = [[2, 40, 50, 60, 70], [2, 41, 51, 61, 71, 81, 91]]
    result = evaluate(lm, sae, "1.res", texts)
    acts = site_activations(lm, texts, ["1.res"])["1.res"]
    x = np.concatenate([acts[0, 1:5], acts[1, 1:7]])  # BOS and padding left out
    f = keras.ops.convert_to_numpy(sae.encode(x))
    x_hat = keras.ops.convert_to_numpy(sae.decode(f))
    assert result["tokens"] == 10
    assert result["l0"] == pytest.approx((f > 0).sum(axis=1).mean(), rel=1e-6)
    assert result["fvu"] == pytest.approx(((x - x_hat) ** 2).sum() / ((x - x.mean(0)) ** 2).sum(), rel=1e-4)
    assert result["delta_lm_loss"] == pytest.approx(result["spliced_lm_loss"] - result["clean_lm_loss"])
    assert abs(result["delta_lm_loss"]) > 0.01  # splicing a random SAE changes the loss
    identity = evaluate(lm, sae, "1.res", texts)
    assert identity == result  # deterministic


def test_observe_inside_generate(lm):
    """keras-hub's compiled generate loop (jit on JAX, tf.function on TF, eager torch):
    the prompt pass is recorded first, then one record per decode step."""
    sae = random_sae(64)
    prompt = [2, 40, 50, 60]
    before = generate_ids(lm, [prompt], 3)[0]
    with attach(lm, {"1.res": sae}, "observe") as attached:
        assert generate_ids(lm, [prompt], 3)[0] == before
    record = attached.records["1.res"]["activations"]
    expected = site_activations(lm, [prompt], ["1.res"])["1.res"][0]
    np.testing.assert_allclose(record[0][0, :4], expected, atol=1e-5)
    assert len(record) >= 3 and all(r.shape[1] == 1 for r in record[1:])
    assert generate_ids(lm, [prompt], 3)[0] == before  # jit_compile and compiled loop restored
