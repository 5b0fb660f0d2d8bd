"""ShieldGemma scores vs the model-card computation in transformers, on tiny random models.

Model card: prompt string -> HF tokenizer -> logits[-1, [Yes, No]] -> softmax.
"""

import numpy as np
import pytest
import torch
import transformers
from conftest import FIXTURES
from reference_strings import SHIELD_CASES
from tiny_models import save_shield_model

import gemma_kit
from gemma_kit.shield import POLICIES, ShieldGemma, build_prompt
from gemma_kit.shield.encoding import encode

pytestmark = pytest.mark.backends

# Content the HF tokenizer parses as plain text (it would turn a typed "<eos>" into the
# control token, which is the model card's injection weakness, tested elsewhere).
CASES = SHIELD_CASES[:6]
POLICY_SET = ["dangerous", "hate", "violence", "obscenity"]


@pytest.fixture(scope="module", params=["gemma2_2b_geometry", "gemma3"])
def pair(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    model = save_shield_model(request.param, folder, (FIXTURES / "tiny_shield_tokenizer.model").read_bytes())
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    return model, hf_tokenizer, ShieldGemma(gemma_kit.load_model(str(folder)))


def model_card_scores(model, tokenizer, shield):
    yes, no = tokenizer.get_vocab()["Yes"], tokenizer.get_vocab()["No"]
    scores = np.zeros((len(CASES), 2, len(POLICY_SET)))
    for i, (user, response) in enumerate(CASES):
        for mode, model_content in enumerate([None, response]):
            encoded = encode(shield.tokenizer, POLICY_SET, user, model_content)
            for j, policy in enumerate(POLICY_SET):
                ids = tokenizer(build_prompt(policy, user, model_content))["input_ids"]
                assert ids == encoded.prompt(j), (user, policy)  # same ids from both tokenizers
                with torch.no_grad():
                    logits = model(torch.tensor([ids])).logits[0, -1, [yes, no]]
                scores[i, mode, j] = torch.softmax(logits.double(), dim=0)[0].item()
    return scores


@pytest.fixture(scope="module")
def expected(pair):
    return model_card_scores(*pair)


def test_answer_ids_come_from_the_vocabulary(pair):
    _, tokenizer, shield = pair
    assert shield.answers == [tokenizer.get_vocab()["Yes"], tokenizer.get_vocab()["No"]]


@pytest.mark.parametrize("reuse_prefix", [True, False])
def test_batched_scores_match_model_card(pair, expected, reuse_prefix):
    _, _, shield = pair
    prompts = [user for user, _ in CASES]
    prompt_only = shield.score(prompts, policies=POLICY_SET, reuse_prefix=reuse_prefix)
    with_response = shield.score(prompts, [r for _, r in CASES], policies=POLICY_SET, reuse_prefix=reuse_prefix)
    assert 0.05 < expected.min() and expected.max() < 0.95  # informative, not saturated
    np.testing.assert_allclose(prompt_only, expected[:, 0], atol=1e-5, rtol=0)
    np.testing.assert_allclose(with_response, expected[:, 1], atol=1e-5, rtol=0)


def test_one_policy_scores_match_model_card(pair, expected):
    """One policy a call: every text's full prompt in one batch, whatever `reuse_prefix`."""
    _, _, shield = pair
    prompts = [user for user, _ in CASES]
    one_each = np.concatenate([shield.score(prompts, policies=[p]) for p in POLICY_SET], axis=1)
    np.testing.assert_allclose(one_each, expected[:, 0], atol=1e-5, rtol=0)


def test_unbatched_scores_match_model_card(pair, expected):
    _, _, shield = pair
    for i, (user, response) in enumerate(CASES[:3]):
        for policy_index, policy in enumerate(POLICY_SET):
            got = shield.score(user, response, policies=POLICIES[policy])
            assert got.shape == (1, 1)
            assert abs(got[0, 0] - expected[i, 1, policy_index]) <= 1e-5


def test_prefix_reuse_equals_one_prompt_per_policy(pair):
    _, _, shield = pair
    users = ["word " * n for n in (1, 7, 40)]  # several prefix lengths and buckets
    reused = shield.score(users, policies=list(POLICIES))
    naive = shield.score(users, policies=list(POLICIES), reuse_prefix=False)
    np.testing.assert_allclose(reused, naive, atol=1e-5, rtol=0)
