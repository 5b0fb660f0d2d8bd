"""Regenerate tests/fixtures/llama_cpp_gguf_export.npz: what llama.cpp computes on the
GGUF files `gemma_kit.models.gguf_export` writes, for tests/test_gguf_export.py.

Two steps, in two environments:
    .venv/bin/python tools/make_gguf_export_fixtures.py export OUT
        (the kit) writes OUT/{case}_{f16,q8_0}.gguf for the fine-tuned models of `CASES`
    python tools/make_gguf_export_fixtures.py llama OUT
        (llama-cpp-python and gguf, built as make_llama_cpp_fixtures.py says) runs them

The fixture holds each file's sha256 (so a test knows it exports the file llama.cpp
ran), llama.cpp's top-64 logits at every position of `sequences`, and its ids for
reference_strings.CHATS formatted by the file's own chat template.
"""

import hashlib
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from reference_strings import CHATS  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
FIXTURE = os.path.join(FIXTURES, "llama_cpp_gguf_export.npz")
CASES = ("tiny_gemma2", "default_gemma3")
QUANTIZATION = ("f16", "q8_0")
TOP = 64


def sequences(case):
    """Token ids scored: the tiny vocabulary's range, or real text ids of the 270M."""
    rng = np.random.default_rng(7)
    high = 512 if case == "tiny_gemma2" else 20000
    ids = rng.integers(7, high, size=(2, 16)).astype(np.int32)
    ids[:, 0] = 2
    return ids


def fine_tuned(case):
    """The model a user would have after LoRA tuning: the base with rank-4 query/value
    adapters whose weights are seeded, not trained (the export merges them)."""
    import gemma_kit
    from gemma_kit.finetune.lora import enable_lora

    source = os.path.join(FIXTURES, "tiny_gemma2_f32.gguf") if case == "tiny_gemma2" else "default"
    lm = gemma_kit.load_model(source)
    rng = np.random.default_rng(11)
    for layer in enable_lora(lm, rank=4):
        for variable in (layer.lora_kernel_a, layer.lora_kernel_b):
            variable.assign(rng.normal(0, 0.05, variable.shape).astype(np.float32))
    return lm


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()


def export(out):
    from gemma_kit.models.gguf_export import export_gguf

    os.makedirs(out, exist_ok=True)
    for case in CASES:
        lm = fine_tuned(case)
        for quantize in QUANTIZATION:
            export_gguf(lm, os.path.join(out, f"{case}_{quantize}.gguf"), quantize)


def llama(out):
    import gguf
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    arrays = {}
    for case in CASES:
        arrays[f"{case}_sequences"] = ids = sequences(case)
        for quantize in QUANTIZATION:
            path = os.path.join(out, f"{case}_{quantize}.gguf")
            key = f"{case}_{quantize}"
            arrays[f"{key}_sha256"] = np.array(sha256(path))
            llm = Llama(model_path=path, n_ctx=64, n_threads=2, n_batch=64, verbose=False, logits_all=True,
                        type_k=int(gguf.GGMLQuantizationType.F32), type_v=int(gguf.GGMLQuantizationType.F32))
            top_ids, top_logits = [], []
            for row in ids:
                llm.reset()
                llm.eval([int(t) for t in row])
                scores = np.array(llm.scores[: len(row)], np.float32)
                order = np.argsort(-scores, axis=-1)[:, :TOP]
                top_ids.append(order)
                top_logits.append(np.take_along_axis(scores, order, axis=-1))
            arrays[f"{key}_top_ids"], arrays[f"{key}_top_logits"] = np.array(top_ids), np.array(top_logits)
            if quantize == "f16":
                template = llm.metadata["tokenizer.chat_template"]
                formatter = Jinja2ChatFormatter(template, eos_token="<eos>", bos_token="<bos>")
                chats = [llm.tokenize(formatter(messages=m).prompt.encode(), add_bos=False, special=True)
                         for m in CHATS]
                width = max(map(len, chats))
                arrays[f"{case}_chat_ids"] = np.array([c + [-1] * (width - len(c)) for c in chats], np.int32)
            del llm
    np.savez(FIXTURE, **arrays)


if __name__ == "__main__":
    {"export": export, "llama": llama}[sys.argv[1]](sys.argv[2])
