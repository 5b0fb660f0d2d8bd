"""Model loading time: the kit's loader against the same loader doing what keras-hub
does by itself (random initial weights drawn, then overwritten from the file; the
tokenizer's vocabulary tracked by Keras) with gguf's dequantizer called as it comes,
each in a fresh process per backend.

    .venv/bin/python tools/bench/load.py [--skip-2b]

Rows: the default Gemma 3 270M from its GGUF file (`gemma_kit.load_model`), and the
backbone of a Gemma 2 2B (keras-hub's gemma2_2b_en geometry, float32) built before
its weights are read, the step whose cost grows with the model. Seconds are one cold
run (a load happens once per process); peak RSS is the whole worker process. Writes
its section of docs/benchmarks.md.
"""

import argparse
import contextlib
import os
import platform
import time

from common import GEMMA2_2B, peak_rss_gib, run_worker, serve_worker, write_section

SECTION = "## Model loading"
BACKENDS = ("jax", "tensorflow")


def _as_keras_hub(enabled):
    """The kit's loader without its three loading fixes: keras-hub's own behaviour, and
    gguf's dequantizer called as it comes."""
    if enabled:
        return
    import gguf
    import numpy as np

    from gemma_kit.models import gguf_model

    gguf_model.placeholder_weights = contextlib.nullcontext
    gguf_model.set_proto = lambda tokenizer, proto: (tokenizer.set_proto(proto), tokenizer)[1]
    gguf_model._dequantize = lambda raw, kind: gguf.quants.dequantize(raw, kind).astype(np.float32, copy=False)


def load_default(backend, loader):
    os.environ["KERAS_BACKEND"] = backend
    import gemma_kit

    _as_keras_hub(loader == "kit")
    start = time.perf_counter()
    gemma_kit.load_model("default")
    return {"seconds": time.perf_counter() - start, "rss": peak_rss_gib()}


def build_2b(backend, loader):
    os.environ["KERAS_BACKEND"] = backend
    import keras_hub

    from gemma_kit.models.keras_hub_fixes import placeholder_weights

    start = time.perf_counter()
    with placeholder_weights() if loader == "kit" else contextlib.nullcontext():
        keras_hub.models.GemmaBackbone(**GEMMA2_2B, dtype="float32")
    return {"seconds": time.perf_counter() - start, "rss": peak_rss_gib()}


WORKERS = {"default": load_default, "2b": build_2b}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", nargs="+")
    parser.add_argument("--skip-2b", action="store_true")
    args = parser.parse_args()
    if args.worker:
        serve_worker(args.worker, WORKERS)
        return
    rows = {"default": "Gemma 3 270M (default), load from GGUF"}
    if not args.skip_2b:
        rows["2b"] = "Gemma 2 2B geometry, backbone build"
    lines = ["", f"Machine: {platform.machine()}, {os.cpu_count()} cores, no GPU; {time.strftime('%Y-%m-%d')}. "
             "Command: `.venv/bin/python tools/bench/load.py` (all rows from the same run). float32; one cold "
             "run per fresh process; keras-hub's way = the same loader drawing random initial weights and "
             "tracking the tokenizer's vocabulary, as keras-hub does, and calling gguf's dequantizer as it "
             "comes (16 rows a step).", "",
             "| model | backend | keras-hub's way s | kit s | speed-up | keras-hub's way peak RSS GiB | "
             "kit peak RSS GiB |", "|---|---|---|---|---|---|---|"]
    for kind, name in rows.items():
        for backend in BACKENDS:
            plain, kit = (run_worker(__file__, [kind, backend, loader]) for loader in ("keras-hub", "kit"))
            lines.append(f"| {name} | {backend} | {plain['seconds']:.1f} | {kit['seconds']:.1f} | "
                         f"{plain['seconds'] / kit['seconds']:.1f}x | {plain['rss']:.1f} | {kit['rss']:.1f} |")
    write_section(SECTION, lines)


if __name__ == "__main__":
    main()
