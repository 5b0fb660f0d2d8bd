"""Run an exported `.tflite` the way LiteRT-LM does (prefill, then one decode step per
token, the caches carried from each call's outputs to the next call's inputs), in
`ai_edge_litert`'s interpreter: greedy tokens and their logits, to compare with Keras."""

import numpy as np

from gemma_kit.errors import GemmaKitError


def greedy(path, prompt_ids, max_new_tokens):
    """(new token ids, logits [steps, vocab] that chose them)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    names = interpreter.get_signature_list()
    lengths = sorted(int(n.split("_")[1]) for n in names if n.startswith("prefill_"))
    fitting = [n for n in lengths if n >= len(prompt_ids)]
    if not fitting:
        raise GemmaKitError(f"{path}: no prefill signature takes {len(prompt_ids)} tokens (has {lengths})")
    length = fitting[0]
    prefill = interpreter.get_signature_runner(f"prefill_{length}")
    decode = interpreter.get_signature_runner("decode")
    caches = {name: np.zeros(d["shape"], d["dtype"]) for name, d in decode.get_input_details().items()
              if name.startswith("kv_cache_")}
    tokens = np.zeros((1, length), np.int32)
    tokens[0, : len(prompt_ids)] = prompt_ids
    out = prefill(tokens=tokens, input_pos=np.arange(length, dtype=np.int32), **caches)
    logits = [out["logits"][0, len(prompt_ids) - 1]]
    new = [int(np.argmax(logits[-1]))]
    position = len(prompt_ids)
    kv_len = next(iter(caches.values())).shape[1]
    while len(new) < max_new_tokens and position < kv_len:
        caches = {name: out[name] for name in caches}
        out = decode(tokens=np.array([[new[-1]]], np.int32), input_pos=np.array([position], np.int32), **caches)
        logits.append(out["logits"][0, 0])
        new.append(int(np.argmax(logits[-1])))
        position += 1
    return new, np.stack(logits)
