"""Text generation: batched through keras-hub's compiled loop, or streamed token by token."""

import keras
import numpy as np

from gemma_kit import chat, runtime
from gemma_kit.chat import decode  # noqa: F401 - part of this module's API
from gemma_kit.errors import GemmaKitError
from gemma_kit.forward import check_ids
from gemma_kit.sampling import Sampling

_CACHE_BUCKET = 256


def generate(causal_lm, prompts, max_new_tokens=64, sampling=Sampling(), as_chat=False):
    """Completions for one prompt (str) or a batch (list of str).

    With `as_chat`, each prompt is a user turn in the Gemma chat format. Generation
    stops at `<eos>` or `<end_of_turn>`; the returned text excludes the prompt.
    """
    single = isinstance(prompts, str)
    texts = [prompts] if single else list(prompts)
    tokenizer = causal_lm.preprocessor.tokenizer
    batch = [encode_prompt(tokenizer, text, as_chat) for text in texts]
    outputs = generate_ids(causal_lm, batch, max_new_tokens, sampling)
    completions = [decode(tokenizer, ids) for ids in outputs]
    return completions[0] if single else completions


def encode_prompt(tokenizer, text, as_chat):
    if as_chat:
        return chat.encode_chat(tokenizer, [{"role": "user", "content": text}])
    return [int(tokenizer.start_token_id), *chat.encode_text(tokenizer, text)]


def generate_ids(causal_lm, prompt_ids, max_new_tokens, sampling=Sampling()):
    """New token ids (stop token excluded) for each prompt, via keras-hub's compiled loop."""
    if max_new_tokens < 1:
        raise GemmaKitError(f"max_new_tokens must be >= 1, found {max_new_tokens}")
    if not len(prompt_ids) or not all(len(ids) for ids in prompt_ids):
        raise GemmaKitError("each prompt needs at least one token id (and there must be a prompt)")
    prompt_ids = [check_ids(causal_lm, ids) for ids in prompt_ids]
    tokenizer = causal_lm.preprocessor.tokenizer
    stop_ids = chat.stop_token_ids(tokenizer)
    lengths = [len(ids) for ids in prompt_ids]
    total = _check_context(causal_lm, max(lengths), max_new_tokens)
    token_ids = np.full((len(prompt_ids), total), int(tokenizer.pad_token_id), dtype="int32")
    padding_mask = np.zeros((len(prompt_ids), total), dtype=bool)
    for row, ids in enumerate(prompt_ids):
        token_ids[row, : len(ids)] = ids
        padding_mask[row, : len(ids)] = True
    _use_sampler(causal_lm, sampling)
    generate_fn = causal_lm.make_generate_function()
    out = generate_fn({"token_ids": token_ids, "padding_mask": padding_mask}, stop_token_ids=stop_ids)
    out_ids = keras.ops.convert_to_numpy(out["token_ids"])
    out_mask = keras.ops.convert_to_numpy(out["padding_mask"])
    results = []
    for row, length in enumerate(lengths):
        new = [int(t) for t, keep in zip(out_ids[row, length:], out_mask[row, length:]) if keep]
        results.append(_cut_at_stop(new[:max_new_tokens], stop_ids))
    return results


def stream(causal_lm, prompt_ids, max_new_tokens=256, sampling=Sampling()):
    """Yield new token ids one at a time as they are produced (batch 1, KV cache)."""
    if max_new_tokens < 1 or not len(prompt_ids):
        raise GemmaKitError(f"stream needs a prompt and max_new_tokens >= 1, found {len(prompt_ids)} ids and "
                            f"{max_new_tokens}")
    prompt_ids = check_ids(causal_lm, prompt_ids)
    stop_ids = chat.stop_token_ids(causal_lm.preprocessor.tokenizer)
    total = _check_context(causal_lm, len(prompt_ids), max_new_tokens)
    # Round the cache up so later turns of a chat reuse the compiled decode step.
    length = -(-total // _CACHE_BUCKET) * _CACHE_BUCKET
    cache = runtime.model_cache(causal_lm, runtime.layer_caches(causal_lm, 1, length))
    step = _step_function(causal_lm)
    rng = np.random.default_rng(sampling.seed)
    logits, cache = step(np.asarray([prompt_ids], dtype="int32"), cache, keras.ops.convert_to_tensor(0, "int32"))
    for position in range(len(prompt_ids), total):
        token = sampling.pick(keras.ops.convert_to_numpy(logits)[0, -1].astype(np.float32), rng)
        if token in stop_ids:
            return
        yield token
        if position + 1 == total:
            return
        logits, cache = step(np.asarray([[token]], dtype="int32"), cache, keras.ops.convert_to_tensor(position, "int32"))


def _check_context(causal_lm, prompt_length, max_new_tokens):
    """prompt + new tokens, refused past the model's context (the KV cache is allocated
    for all of them up front: a huge max_new_tokens asked for terabytes)."""
    from gemma_kit.models.info import context_length

    limit = context_length(causal_lm)
    if prompt_length + max_new_tokens > limit:
        raise GemmaKitError(f"a prompt of {prompt_length} tokens and max_new_tokens {max_new_tokens} exceed the "
                            f"model's context of {limit} tokens")
    return prompt_length + max_new_tokens


def _cut_at_stop(ids, stop_ids):
    for i, token in enumerate(ids):
        if token in stop_ids:
            return ids[:i]
    return ids


def _use_sampler(causal_lm, sampling):
    if getattr(causal_lm, "_gemma_kit_sampling", None) != sampling:
        causal_lm.compile(sampler=sampling.keras_hub_sampler())
        causal_lm._gemma_kit_sampling = sampling


def _step_function(causal_lm):
    """(token_ids, cache, index) -> (logits, cache), compiled once per model."""

    def step(token_ids, cache, index):
        logits, _, cache = causal_lm.call_with_cache(token_ids, cache, index)
        return logits, cache

    return runtime.cached(causal_lm, "step", lambda: runtime.compile_fn(causal_lm, step))
