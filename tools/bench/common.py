"""Helpers the benchmark scripts share: timing, peak memory, worker processes, the
random-weight Gemma 2 2B, and writing one section of docs/benchmarks.md."""

import json
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def timed(fn, repeats=3):
    """Median seconds of `repeats` warm runs (one run first to compile)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_rss_gib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def run_worker(script, args, python=sys.executable, env=()):
    """Run `script --worker ARGS` in a fresh process (peak RSS is per process), with
    `env` added to the environment; its last stdout line is JSON."""
    out = subprocess.run([python, os.path.abspath(script), "--worker", *args], capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **dict(env)})
    if out.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def serve_worker(worker_args, workers):
    """In a worker process (`--worker KIND ARGS...`): run `workers[KIND](*ARGS)` and
    print its result as the JSON line `run_worker` reads."""
    kind, *rest = worker_args
    print(json.dumps(workers[kind](*rest)))


# keras-hub's gemma2_2b_en geometry.
GEMMA2_2B = dict(
    vocabulary_size=256000, num_layers=26, num_query_heads=8, num_key_value_heads=4, hidden_dim=2304,
    intermediate_dim=18432, head_dim=256, query_head_dim_normalize=True, use_post_ffw_norm=True,
    use_post_attention_norm=True, final_logit_soft_cap=30.0, attention_logit_soft_cap=50.0,
    sliding_window_size=4096, use_sliding_window_attention=True)


def gemma2_2b(dtype, tokenizer_proto, vocabulary_size=256000):
    """A random-weight causal LM with keras-hub's gemma2_2b_en geometry (the ShieldGemma
    2B geometry too): speed and memory do not depend on the weight values."""
    import keras_hub

    import gemma_kit

    backbone = keras_hub.models.GemmaBackbone(**{**GEMMA2_2B, "vocabulary_size": vocabulary_size}, dtype=dtype)
    tokenizer = keras_hub.models.GemmaTokenizer(proto=tokenizer_proto)
    return gemma_kit.prepare(keras_hub.models.GemmaCausalLM(
        backbone=backbone, preprocessor=keras_hub.models.GemmaCausalLMPreprocessor(tokenizer)))


def write_section(section, lines):
    """Replace (or append) the `section` heading and its text in docs/benchmarks.md, atomically."""
    path = os.path.join(ROOT, "docs", "benchmarks.md")
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    # Whole heading lines: one section's heading can begin another's ("## Gemma Scope").
    old = text.rstrip("\n").split("\n")
    start = old.index(section) if section in old else len(old)
    end = next((i for i in range(start + 1, len(old)) if old[i].startswith("## ")), len(old))
    head = "\n".join(old[:start]).rstrip() + "\n\n"
    tail = "\n" + "\n".join(old[end:]) + "\n" if end < len(old) else ""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(head + "\n".join([section, *lines]) + "\n" + tail)
    os.replace(tmp, path)
    print("\n".join(lines))
