"""Train a JumpReLU SAE on the default Gemma 3 270M's middle residual stream, from
offline English prose (tools/offline_corpus.py), and evaluate it on held-out prose.

    .venv/bin/python tools/train_default_sae.py [--out gemma_kit/assets/scope/gemma3_270m_9_res]

Writes the SAE as a Gemma Scope 2 folder (float16 weights, metrics in config.json) and
the results into docs/benchmarks.md.
"""

import argparse
import os
import platform
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench"))

from common import ROOT, write_section  # noqa: E402
from offline_corpus import split  # noqa: E402

SITE, WIDTH = "9.res", 2048
SECTION = "## Gemma Scope SAE trained on the default model"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=os.path.join(ROOT, "gemma_kit", "assets", "scope", "gemma3_270m_9_res"))
    parser.add_argument("--l0-coefficient", type=float, default=0.02)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    import shutil

    import gemma_kit
    from gemma_kit.scope import evaluate, save_sae, train_sae
    from gemma_kit.scope.activations import collect_activations

    train_texts, eval_texts = split()
    lm = gemma_kit.load_model("default")
    start = time.perf_counter()
    x = collect_activations(lm, train_texts, SITE, max_length=128)
    collect_seconds = time.perf_counter() - start
    start = time.perf_counter()
    sae, history = train_sae(x, WIDTH, l0_coefficient=args.l0_coefficient, epochs=args.epochs, batch_size=1024,
                             learning_rate=1e-3, lr_warmup_steps=200, l0_warmup_steps=1000, bandwidth=0.05, verbose=2)
    train_seconds = time.perf_counter() - start
    metrics = evaluate(lm, sae, SITE, eval_texts, max_length=128)
    print(metrics)
    if os.path.exists(args.out):
        shutil.rmtree(args.out)
    config = {"model": "gemma3-270m (default GGUF)", "hf_hook_point_in": "model.layers.9.output", "site": SITE,
              "train_tokens": int(len(x)), "eval_tokens": metrics["tokens"], "l0_coefficient": args.l0_coefficient,
              "epochs": args.epochs, "metrics": metrics}
    save_sae(sae, args.out, dtype="float16", **config)
    lines = ["", f"Machine: {platform.machine()}, {os.cpu_count()} cores, no GPU; {time.strftime('%Y-%m-%d')}. "
             "Command: `.venv/bin/python tools/train_default_sae.py`. JAX, float32.", "",
             f"Site `{SITE}` (residual stream after block 9 of 18) of the default Gemma 3 270M; width {WIDTH}. "
             f"Training: {len(x):,} tokens of offline English prose (package descriptions and standard-library "
             f"docstrings, `tools/offline_corpus.py`), {args.epochs} epochs, batch 1024, L0 coefficient "
             f"{args.l0_coefficient}; evaluation on {metrics['tokens']:,} held-out tokens (every 10th paragraph), "
             "BOS/EOS/padding excluded.", "",
             "| L0 | FVU | clean LM loss | spliced LM loss | delta LM loss | collect s | train s |",
             "|---|---|---|---|---|---|---|",
             f"| {metrics['l0']:.1f} | {metrics['fvu']:.3f} | {metrics['clean_lm_loss']:.3f} | "
             f"{metrics['spliced_lm_loss']:.3f} | {metrics['delta_lm_loss']:.3f} | {collect_seconds:.0f} | "
             f"{train_seconds:.0f} |"]
    write_section(SECTION, lines)


if __name__ == "__main__":
    main()
