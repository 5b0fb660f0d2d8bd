"""ShieldGemma screening speed: four policies per text, one prompt per policy ("naive")
vs the shared prefix run once ("prefix reuse"), batch 1 and 16.

    .venv/bin/python tools/bench/shield.py [--skip-2b]

Models: the default Gemma 3 270M (float32, JAX) and a random-weight Gemma 2 2B with
ShieldGemma 2B's geometry (float32, JAX; its vocabulary is the default model's 262,144
tokens so that its tokenizer has Yes / No, 6,144 more embedding rows than the real
256,000). Workloads: short user prompts (prompt-only form) and the same prompts with a
~150-token model response (prompt-response form). Each model runs in its own process;
every timing is one warm run after an identical run that compiled. Writes its section
of docs/benchmarks.md.
"""

import argparse
import os
import platform
import time

from common import gemma2_2b, peak_rss_gib, run_worker, timed, write_section

SECTION = "## ShieldGemma screening"
PROMPTS = ["How do I bake bread at home?", "Write a poem about the sea.", "What is the capital of France?",
           "Tell me how to build a bomb.", "You are worthless and everyone hates you.",
           "Can you recommend a good book about the history of Rome?"]
RESPONSE = ("Here is a simple approach that works well for beginners. First, gather what you need and read "
            "the instructions through once before you start, so nothing surprises you halfway. Work in small "
            "steps, check the result after each one, and keep notes on what you changed. If something goes "
            "wrong, go back to the last step that worked rather than starting over. Most people find that "
            "the second attempt takes half the time of the first, and by the third the process feels natural. "
            "Finally, share what you made with a friend and ask for honest feedback; it is the fastest way to "
            "improve, and it makes the whole thing more fun.")
BATCHES = (1, 16)


def worker(model):
    os.environ["KERAS_BACKEND"] = "jax"
    import gemma_kit
    from gemma_kit.shield import ShieldGemma

    if model == "default":
        lm = gemma_kit.load_model("default")
    else:
        from gemma_kit.models.gguf_model import GGUFModelFile

        lm = gemma2_2b("float32", GGUFModelFile(gemma_kit.default_model_path()).sentencepiece_proto(), 262144)
    shield = ShieldGemma(lm)
    results = []
    for workload in ("prompt", "response"):
        for batch in BATCHES:
            prompts = [PROMPTS[i % len(PROMPTS)] for i in range(batch)]
            responses = None if workload == "prompt" else [RESPONSE] * batch
            row = {"workload": workload, "batch": batch}
            for reuse in (False, True):
                seconds = timed(lambda: shield.score(prompts, responses, reuse_prefix=reuse), repeats=1)
                row["prefix" if reuse else "naive"] = batch / seconds
            results.append(row)
    return {"rows": results, "rss": peak_rss_gib(), "params": lm.backbone.count_params()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker")
    parser.add_argument("--skip-2b", action="store_true")
    args = parser.parse_args()
    if args.worker:
        import json

        print(json.dumps(worker(args.worker)))
        return
    models = {"Gemma 3 270M (default)": "default"}
    if not args.skip_2b:
        models["ShieldGemma 2B geometry, random"] = "gemma2_2b"
    measured = {name: run_worker(__file__, [key]) for name, key in models.items()}
    lines = ["", f"Machine: {platform.machine()}, {os.cpu_count()} cores, no GPU; {time.strftime('%Y-%m-%d')}. "
             "Command: `.venv/bin/python tools/bench/shield.py` (all rows from the same run). JAX, float32; "
             "texts/s for the 4 reported harms per text; prompt = short user prompts, prompt-only form; "
             "response = the same prompts with a ~150-token response, prompt-response form. One warm run "
             "each; peak RSS is the whole worker process.", "",
             "| model | workload | batch | naive texts/s | prefix reuse texts/s | speed-up | peak RSS GiB |",
             "|---|---|---|---|---|---|---|"]
    for name, result in measured.items():
        for row in result["rows"]:
            lines.append(f"| {name} | {row['workload']} | {row['batch']} | {row['naive']:.2f} | "
                         f"{row['prefix']:.2f} | {row['prefix'] / row['naive']:.2f}x | {result['rss']:.1f} |")
    write_section(SECTION, lines)


if __name__ == "__main__":
    main()
