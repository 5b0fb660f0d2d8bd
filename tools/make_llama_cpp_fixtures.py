"""Regenerate tests/fixtures/llama_cpp_*: what llama.cpp computes, for the parity tests.

Run in an environment with llama-cpp-python (built as the reference file says) and gguf:
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF" \
        pip install llama-cpp-python==0.3.36 gguf==0.19.0 numpy
    python tools/make_llama_cpp_fixtures.py DEFAULT_GGUF_PATH

Writes:
- tiny_gemma2_f32.gguf, tiny_gemma2_quant.gguf: tiny random Gemma 2 models written with
  gguf's writer (float32; and Q8_0/Q5_0/Q4_0/Q4_1/Q5_1/F16/BF16 tensors);
- llama_cpp_tiny.npz: llama.cpp's logits at every position of fixed token sequences,
  and its greedy continuations, for both files;
- llama_cpp_default.json: llama.cpp's prompt tokens and 16 greedy tokens for the
  default Gemma 3 270M on reference_strings.PROMPTS, its token ids (no BOS,
  special tokens not parsed) for reference_strings.tokenizer_strings(), and its ids for
  reference_strings.CHATS written out in the Gemma turn format (BOS, special tokens parsed).
"""

import json
import os
import sys

import gguf
import numpy as np
from llama_cpp import Llama

sys.path.insert(0, os.path.dirname(__file__))
from reference_strings import CHATS, PROMPTS, tokenizer_strings  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")
Q = gguf.GGMLQuantizationType
TINY = dict(vocab=512, hidden=64, layers=4, heads=4, kv_heads=2, head_dim=16, ff=128, window=8)
QUANT_TYPES = [Q.Q8_0, Q.Q5_0, Q.Q4_0, Q.Q4_1, Q.Q5_1, Q.F16, Q.BF16]


def tiny_vocab(size):
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>"]
    tokens, types = list(specials), [3] * len(specials)
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [6] * 256
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["▁" + c for c in letters] + list(letters) + ["▁the", "th", "he", "in", "er", "an", "\n"]
    words += ["▁" + a + b for a in letters for b in letters]
    tokens += words[: size - len(tokens)]
    types += [1] * (size - len(types))
    scores = [0.0] * len(specials) + [0.0] * 256 + [-float(i) for i in range(size - len(specials) - 256)]
    return tokens, scores, types


def write_tiny_gemma2(path, rng, quantized):
    c = TINY
    w = gguf.GGUFWriter(path, "gemma2")
    w.add_name("tiny random gemma2")
    w.add_context_length(128)
    w.add_embedding_length(c["hidden"])
    w.add_block_count(c["layers"])
    w.add_feed_forward_length(c["ff"])
    w.add_head_count(c["heads"])
    w.add_head_count_kv(c["kv_heads"])
    w.add_key_length(c["head_dim"])
    w.add_value_length(c["head_dim"])
    w.add_layer_norm_rms_eps(1e-6)
    w.add_sliding_window(c["window"])
    w.add_attn_logit_softcapping(50.0)
    w.add_final_logit_softcapping(30.0)
    tokens, scores, types = tiny_vocab(c["vocab"])
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)
    w.add_unk_token_id(3)
    w.add_pad_token_id(0)
    w.add_add_space_prefix(False)
    tensors = {"token_embd.weight": rng.normal(0, 1.0, (c["vocab"], c["hidden"])),
               "output_norm.weight": 1 + rng.normal(0, 0.1, c["hidden"])}
    q_dim, kv_dim = c["heads"] * c["head_dim"], c["kv_heads"] * c["head_dim"]
    shapes = {"attn_q": (q_dim, c["hidden"]), "attn_k": (kv_dim, c["hidden"]), "attn_v": (kv_dim, c["hidden"]),
              "attn_output": (c["hidden"], q_dim), "ffn_gate": (c["ff"], c["hidden"]),
              "ffn_up": (c["ff"], c["hidden"]), "ffn_down": (c["hidden"], c["ff"])}
    for i in range(c["layers"]):
        for norm in ("attn_norm", "post_attention_norm", "ffn_norm", "post_ffw_norm"):
            tensors[f"blk.{i}.{norm}.weight"] = 1 + rng.normal(0, 0.1, c["hidden"])
        for name, shape in shapes.items():
            tensors[f"blk.{i}.{name}.weight"] = rng.normal(0, 0.15, shape)
    for k, (name, value) in enumerate(tensors.items()):
        value = value.astype(np.float32)
        if quantized and value.ndim == 2:
            qtype = QUANT_TYPES[k % len(QUANT_TYPES)]
            w.add_tensor(name, gguf.quants.quantize(value, qtype), raw_dtype=qtype)
        else:
            w.add_tensor(name, value)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def llama(path, **kwargs):
    # float32 KV cache (llama.cpp defaults to float16) so the tiny parity is float32 throughout.
    return Llama(model_path=path, n_ctx=128, n_threads=2, n_batch=128, verbose=False, seed=0,
                 type_k=int(Q.F32), type_v=int(Q.F32), flash_attn=False, **kwargs)


def all_logits(llm, ids):
    llm.reset()
    llm.eval(ids)
    return np.array(llm.scores[: len(ids)], dtype=np.float32)


def greedy(llm, ids, steps):
    llm.reset()
    out = []
    for token in llm.generate(ids, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0):
        out.append(int(token))
        if len(out) == steps:
            break
    return out


def tiny_fixtures(rng):
    arrays = {}
    sequences = rng.integers(7, TINY["vocab"], size=(3, 24)).astype(np.int32)
    sequences[:, 0] = 2
    arrays["sequences"] = sequences
    for kind in ("f32", "quant"):
        path = os.path.join(FIXTURES, f"tiny_gemma2_{kind}.gguf")
        write_tiny_gemma2(path, np.random.default_rng(1), quantized=kind == "quant")
        llm = llama(path, logits_all=True)
        arrays[f"{kind}_logits"] = np.stack([all_logits(llm, list(map(int, s))) for s in sequences])
        arrays[f"{kind}_greedy"] = np.array([greedy(llm, list(map(int, s[:8])), 32) for s in sequences], np.int32)
    np.savez(os.path.join(FIXTURES, "llama_cpp_tiny.npz"), **arrays)


def gemma_turns(messages):
    """The Gemma chat format as published, ending with the model's open turn."""
    turns = "".join(f"<start_of_turn>{m['role']}\n{m['content']}<end_of_turn>\n" for m in messages)
    return turns + "<start_of_turn>model\n"


def default_fixtures(path):
    llm = llama(path)
    prompts = []
    for text in PROMPTS:
        ids = llm.tokenize(text.encode(), add_bos=True, special=False)
        prompts.append({"text": text, "prompt_ids": ids, "greedy_ids": greedy(llm, ids, 16)})
    strings = [{"text": s, "ids": llm.tokenize(s.encode(), add_bos=False, special=False)} for s in tokenizer_strings()]
    chats = [{"messages": messages, "ids": llm.tokenize(gemma_turns(messages).encode(), add_bos=True, special=True)}
             for messages in CHATS]
    out = {"model": os.path.basename(path), "llama_cpp_python": __import__("llama_cpp").__version__,
           "prompts": prompts, "tokenizer": strings, "chats": chats}
    with open(os.path.join(FIXTURES, "llama_cpp_default.json"), "w") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    os.makedirs(FIXTURES, exist_ok=True)
    tiny_fixtures(np.random.default_rng(0))
    default_fixtures(sys.argv[1])
