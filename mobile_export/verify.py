"""Run an exported `.tflite` the way LiteRT-LM does (prefill, then one decode step per
token, the caches carried from each call's outputs to the next call's inputs), in
`ai_edge_litert`'s interpreter: greedy tokens and their logits, to compare with Keras."""

import os

import numpy as np

from gemma_kit.errors import GemmaKitError


def greedy(path, prompt_ids, max_new_tokens):
    """(new token ids, logits [steps, vocab] that chose them)."""
    interpreter = _interpreter(path)
    lengths = _prefill_lengths(interpreter.get_signature_list())
    fitting = [n for n in lengths if n >= len(prompt_ids)]
    if not fitting:
        raise GemmaKitError(f"{path}: no prefill signature takes {len(prompt_ids)} tokens (has {lengths})")
    out, caches = _prefill(interpreter, fitting[0], prompt_ids)
    logits = [out["logits"][0, len(prompt_ids) - 1]]
    new = [int(np.argmax(logits[-1]))]
    position = len(prompt_ids)
    decode = interpreter.get_signature_runner("decode")
    kv_len = out[caches[0]].shape[1]
    while len(new) < max_new_tokens and position < kv_len:
        out = _decode(decode, new[-1], position, out, caches)
        logits.append(out["logits"][0, 0])
        new.append(int(np.argmax(logits[-1])))
        position += 1
    return new, np.stack(logits)


def signature_logits(path, ids, decode_steps=16):
    """{signature: logits [n, vocab]} over the token ids `ids` (at least 2): each
    `prefill_L` over `ids[:L]`, and `decode` teacher-forced over up to `decode_steps`
    ids from position `decode_start`, after a prefill of the ids before it."""
    interpreter = _interpreter(path)
    lengths = _prefill_lengths(interpreter.get_signature_list())
    found = {f"prefill_{n}": _prefill(interpreter, n, ids[:n])[0]["logits"][0, : min(n, len(ids))] for n in lengths}
    start = decode_start(lengths, ids)
    out, caches = _prefill(interpreter, lengths[0], ids[:start])
    decode, logits = interpreter.get_signature_runner("decode"), []
    for position, token in enumerate(ids[start : start + decode_steps], start=start):
        out = _decode(decode, token, position, out, caches)
        logits.append(out["logits"][0, 0])
    found["decode"] = np.stack(logits)
    return found


def decode_start(prefill_lengths, ids):
    """Where `signature_logits` starts decoding: after at most half of `ids`."""
    return min(min(prefill_lengths), len(ids) // 2)


def _interpreter(path):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=os.fspath(path))


def _prefill_lengths(signature_names):
    return sorted(int(n.split("_")[1]) for n in signature_names if n.startswith("prefill_"))


def _prefill(interpreter, length, ids):
    """Run `prefill_{length}` on `ids` (padded at the end) from empty caches: (outputs,
    the cache names)."""
    runner = interpreter.get_signature_runner(f"prefill_{length}")
    caches = {name: np.zeros(d["shape"], d["dtype"]) for name, d in runner.get_input_details().items()
              if name.startswith("kv_cache_")}
    tokens = np.zeros((1, length), np.int32)
    tokens[0, : len(ids)] = ids
    return runner(tokens=tokens, input_pos=np.arange(length, dtype=np.int32), **caches), list(caches)


def _decode(decode, token, position, out, caches):
    """One `decode` step on `token` at `position`, the caches taken from `out`."""
    return decode(tokens=np.array([[token]], np.int32), input_pos=np.array([position], np.int32),
                  **{name: out[name] for name in caches})


def logits_error(reference, logits):
    """max |difference|, top-1 agreement and mean KL(reference || logits) per position."""
    reference, logits = np.asarray(reference, np.float64), np.asarray(logits, np.float64)
    log_p, log_q = _log_softmax(reference), _log_softmax(logits)
    return {"max_abs": float(np.abs(reference - logits).max()),
            "top1": float(np.mean(reference.argmax(-1) == logits.argmax(-1))),
            "kl": float(np.mean(np.sum(np.exp(log_p) * (log_p - log_q), axis=-1)))}


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def quantization_error(path, ids, reference):
    """{signature: logits_error} of the model at `path` over `ids` against `reference`,
    the logits [len(ids), vocab] of the model it was exported from."""
    found = signature_logits(path, ids)
    start = decode_start(_prefill_lengths(found), ids)
    return {name: logits_error(reference[(start if name == "decode" else 0) :][: len(got)], got)
            for name, got in found.items()}
