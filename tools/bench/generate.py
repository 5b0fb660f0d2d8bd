"""Generation speed and memory: the kit on each backend vs llama.cpp and transformers.

    .venv/bin/python tools/bench/generate.py [--llama-python .ref/venv/bin/python] [--skip-2b]

Each measurement runs in its own process (peak RSS is per process). Same weights
everywhere: the default Gemma 3 270M GGUF; llama.cpp runs it as Q4_K_M, the kit and
transformers (which reads the same GGUF) dequantized to float32. Prefill: one forward
pass over a 128-token prompt. Decode: 128 greedy new tokens after a 16-token prompt,
warm (compiled) runs, median of 3. Writes the table into docs/benchmarks.md.
"""

import argparse
import json
import os
import platform
import time

from common import ROOT, gemma2_2b, peak_rss_gib, run_worker, timed, write_section
PREFILL, DECODE_PROMPT, DECODE = 128, 16, 128
SECTION = "## Generation"


def prompt_ids(n):
    return [2] + [(7919 * i) % 200000 + 1000 for i in range(n - 1)]


def kit_worker(backend):
    os.environ["KERAS_BACKEND"] = backend
    import gemma_kit

    lm = gemma_kit.load_model("default")
    prefill = timed(lambda: gemma_kit.logits(lm, [prompt_ids(PREFILL)]))
    decode = timed(lambda: _generate_exactly(lm))
    return {"prefill": PREFILL / prefill, "decode": DECODE / decode, "rss": peak_rss_gib()}


def _generate_exactly(lm):
    from gemma_kit.generation import generate_ids

    # Stop tokens would end the run early and flatter the number; count what was made.
    out = generate_ids(lm, [prompt_ids(DECODE_PROMPT)], DECODE)[0]
    if len(out) != DECODE:
        raise RuntimeError(f"generation stopped after {len(out)} tokens")


def transformers_worker():
    import torch
    import transformers

    import gemma_kit

    torch.set_num_threads(os.cpu_count())
    path = gemma_kit.default_model_path()
    model = transformers.AutoModelForCausalLM.from_pretrained(
        os.path.dirname(path), gguf_file=os.path.basename(path), torch_dtype=torch.float32).eval()
    ids = torch.tensor([prompt_ids(PREFILL)])
    short = torch.tensor([prompt_ids(DECODE_PROMPT)])
    with torch.no_grad():
        prefill = timed(lambda: model(ids))
        decode = timed(lambda: model.generate(short, max_new_tokens=DECODE, min_new_tokens=DECODE, do_sample=False))
    return {"prefill": PREFILL / prefill, "decode": DECODE / decode, "rss": peak_rss_gib()}


def llama_cpp_worker(path):
    from llama_cpp import Llama

    llm = Llama(model_path=path, n_ctx=512, n_threads=os.cpu_count(), n_batch=512, verbose=False)

    def prefill():
        llm.reset()
        llm.eval(prompt_ids(PREFILL))

    def decode():
        llm.reset()
        for n, _ in enumerate(llm.generate(prompt_ids(DECODE_PROMPT), top_k=1, temp=0.0, repeat_penalty=1.0), 1):
            if n == DECODE:
                break

    return {"prefill": PREFILL / timed(prefill), "decode": DECODE / timed(decode), "rss": peak_rss_gib()}


def gemma2_2b_worker(dtype):
    """Random-weight Gemma 2 2B (keras-hub's gemma2_2b_en geometry), decode on JAX."""
    os.environ["KERAS_BACKEND"] = "jax"
    from gemma_kit.generation import generate_ids
    from gemma_kit.models.gguf_model import GGUFModelFile

    # Any Gemma tokenizer serves: generation only needs its pad and stop ids.
    proto = GGUFModelFile(os.path.join(ROOT, "tests", "fixtures", "tiny_gemma2_f32.gguf")).sentencepiece_proto()
    lm = gemma2_2b(dtype, proto)
    n = 32
    prompt = [2] + list(range(10, 10 + DECODE_PROMPT - 1))
    seconds = timed(lambda: generate_ids(lm, [prompt], n), repeats=1)
    return {"decode": n / seconds, "rss": peak_rss_gib(), "params": lm.backbone.count_params()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", nargs="+")
    parser.add_argument("--llama-python", default=os.path.join(ROOT, ".ref", "venv", "bin", "python"))
    parser.add_argument("--skip-2b", action="store_true")
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        fn = {"kit": kit_worker, "transformers": transformers_worker, "llama": llama_cpp_worker,
              "gemma2_2b": gemma2_2b_worker}[kind]
        print(json.dumps(fn(*rest)))
        return
    import gemma_kit

    rows = {f"gemma-kit, {b}": run_worker(__file__, ["kit", b]) for b in ("jax", "tensorflow", "torch")}
    rows["transformers (torch, float32)"] = run_worker(__file__, ["transformers"])
    rows["llama.cpp (Q4_K_M)"] = run_worker(__file__, ["llama", gemma_kit.default_model_path()], args.llama_python)
    big = {} if args.skip_2b else {d: run_worker(__file__, ["gemma2_2b", d]) for d in ("float32", "bfloat16")}
    write_report(rows, big)


def write_report(rows, big):
    llama, hf = rows["llama.cpp (Q4_K_M)"], rows["transformers (torch, float32)"]
    lines = [SECTION, "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores, no GPU; {time.strftime('%Y-%m-%d')}. "
             "Command: `.venv/bin/python tools/bench/generate.py` (all rows measured in the same run).", "",
             f"Default model (Gemma 3 270M). Prefill: {PREFILL}-token prompt; decode: {DECODE} greedy tokens after "
             f"{DECODE_PROMPT}; batch 1; median of 3 warm runs; peak RSS of the process.", "",
             "| runtime | prefill tok/s | decode tok/s | decode vs llama.cpp | decode vs transformers | peak RSS GiB |",
             "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['prefill']:.1f} | {r['decode']:.1f} | {r['decode'] / llama['decode']:.2f}x | "
                     f"{r['decode'] / hf['decode']:.2f}x | {r['rss']:.2f} |")
    if big:
        lines += ["", "Gemma 2 2B geometry, random weights, JAX, batch 1, 32 new tokens after a 16-token prompt "
                  "(one warm run):", "", "| dtype | parameters | decode tok/s | peak RSS GiB |", "|---|---|---|---|"]
        for dtype, r in big.items():
            lines.append(f"| {dtype} | {r['params']:,} | {r['decode']:.2f} | {r['rss']:.2f} |")
    write_section(SECTION, lines[1:])

if __name__ == "__main__":
    main()
