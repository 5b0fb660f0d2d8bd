"""Training speed and memory: LoRA, QLoRA (int8 / int4 base) and full tuning, one
optimizer step at a time through Keras' compiled train step (what `model.fit` runs).

    .venv/bin/python tools/bench/finetune.py [--skip-2b]

Models: the default Gemma 3 270M and a random-weight Gemma 2 2B (keras-hub's
gemma2_2b_en geometry), float32 weights, JAX. LoRA rank 8 on query and value, Adam.
Each (model, mode) runs in its own process so that peak RSS is its own; tokens/s counts
every position of the batch (batch x sequence length), median of 3 steps after one
step that compiled. Every position carries loss, except in "lora-half-loss": the last
half of each row does (as a chat answer would), and `finetune`'s `LossPositions` view
sends only those positions through the output layer; its "vs LoRA" compares with
projecting every position. Full tuning of the 2B needs ~42 GB (weights, gradients and
two Adam moments in float32), more than this machine has, so it is not run. Writes its
section of docs/benchmarks.md, with each mode's speed relative to LoRA in the same run.
"""

import argparse
import os
import platform
import time

from common import gemma2_2b, peak_rss_gib, run_worker, timed, write_section

SECTION = "## Fine-tuning"
MODES = ("lora", "lora-half-loss", "qlora-int8", "qlora-int4", "full")
SHAPES = {"default": (4, 128), "gemma2_2b": (1, 128)}  # (batch, sequence length)


def worker(model, mode):
    os.environ["KERAS_BACKEND"] = "jax"
    import keras
    import numpy as np

    import gemma_kit
    from gemma_kit.finetune import compile_for_tuning, enable_lora, quantize

    keras.utils.set_random_seed(0)
    if model == "default":
        lm = gemma_kit.load_model("default")
    else:
        from gemma_kit.models.gguf_model import GGUFModelFile

        lm = gemma2_2b("float32", GGUFModelFile(gemma_kit.default_model_path()).sentencepiece_proto(), 256000)
    if mode.startswith("qlora"):
        quantize(lm, mode.split("-")[1])
    if mode != "full":
        enable_lora(lm, rank=8, targets=("query", "value"))
    compile_for_tuning(lm, learning_rate=1e-4)
    batch, length = SHAPES[model]
    rng = np.random.default_rng(0)
    x = {"token_ids": rng.integers(3, 20000, (batch, length)).astype("int32"),
         "padding_mask": np.ones((batch, length), bool)}
    y = rng.integers(3, 20000, (batch, length)).astype("int32")
    weights = np.ones((batch, length), "float32")
    model = lm
    if mode == "lora-half-loss":
        from gemma_kit.finetune.training import training_view

        model = training_view(lm)
        positions = np.tile(np.arange(length // 2, length, dtype="int32"), (batch, 1))
        x = {**x, "positions": positions}
        y, weights = np.take_along_axis(y, positions, 1), weights[:, : length // 2]
    seconds = timed(lambda: keras.Model.train_on_batch(model, x, y, sample_weight=weights), repeats=3)
    trainable = sum(int(np.prod(v.shape)) for v in lm.trainable_variables)
    return {"tokens_per_s": batch * length / seconds, "step_s": seconds, "rss": peak_rss_gib(), "trainable": trainable}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", nargs=2)
    parser.add_argument("--skip-2b", action="store_true")
    args = parser.parse_args()
    if args.worker:
        import json

        print(json.dumps(worker(*args.worker)))
        return
    models = {"Gemma 3 270M (default)": ("default", MODES)}
    if not args.skip_2b:
        models["Gemma 2 2B geometry, random"] = ("gemma2_2b", MODES[:4])
    lines = ["", f"Machine: {platform.machine()}, {os.cpu_count()} cores, no GPU; {time.strftime('%Y-%m-%d')}. "
             "Command: `.venv/bin/python tools/bench/finetune.py` (all rows from the same run). JAX, float32 "
             "weights, Adam, LoRA rank 8 on query and value; median of 3 optimizer steps after a compiling one; "
             "peak RSS of each worker process. Full tuning of the 2B is not run: weights, gradients and Adam "
             "moments in float32 need ~42 GB, this machine has 24.", "",
             "| model | mode | batch x length | trainable parameters | tokens/s | vs LoRA | s/step | peak RSS GiB |",
             "|---|---|---|---|---|---|---|---|"]
    for name, (key, modes) in models.items():
        measured = {mode: run_worker(__file__, [key, mode]) for mode in modes}
        batch, length = SHAPES[key]
        for mode, row in measured.items():
            lines.append(f"| {name} | {mode} | {batch} x {length} | {row['trainable']:,} | "
                         f"{row['tokens_per_s']:.0f} | {row['tokens_per_s'] / measured['lora']['tokens_per_s']:.2f}x | "
                         f"{row['step_s']:.2f} | {row['rss']:.1f} |")
    write_section(SECTION, lines)


if __name__ == "__main__":
    main()
