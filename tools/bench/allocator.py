"""The memory allocator under a default-model export: glibc's malloc against TCMalloc
and jemalloc preloaded (`LD_PRELOAD`), each in its own process, same run. The export is
the float32 `.tflite` of the default Gemma 3 270M (prefill 16 and 64, KV cache 256),
converted in the worker as `export`'s TensorFlow process does it.

    .venv/bin/python tools/bench/allocator.py

Needs Debian's libtcmalloc-minimal4 and libjemalloc2 (an allocator not installed is left
out). Writes its section of docs/benchmarks.md.
"""

import argparse
import os
import platform
import sys
import tempfile
import time

from common import peak_rss_gib, run_worker, serve_worker, write_section

SECTION = "## Memory allocator"
LIBRARIES = {"TCMalloc": "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
             "jemalloc": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"}


def export_worker(out):
    os.environ.update(KERAS_BACKEND="tensorflow", TF_ENABLE_ONEDNN_OPTS="0")
    from mobile_export.export import export

    start = time.perf_counter()
    export("default", out, prefill_lengths=(16, 64), kv_len=256)
    return {"seconds": time.perf_counter() - start, "peak_rss_gib": peak_rss_gib()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", nargs="+")
    args = parser.parse_args()
    if args.worker:
        return serve_worker(args.worker, {"export": export_worker})
    rows = {}
    for name, library in {"glibc malloc": None, **LIBRARIES}.items():
        if library and not os.path.exists(library):
            continue
        env = {"LD_PRELOAD": library or "", "TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": str(1 << 40)}
        with tempfile.TemporaryDirectory() as scratch:
            rows[name] = run_worker(__file__, ["export", os.path.join(scratch, "model.tflite")], env=env)
        print(name, rows[name], flush=True)
    base = rows["glibc malloc"]["seconds"]
    lines = ["", f"Machine: {platform.machine()}, {os.cpu_count()} cores, no GPU; {time.strftime('%Y-%m-%d')}. "
             "Command: `.venv/bin/python tools/bench/allocator.py` (all rows from the same run). The default "
             "Gemma 3 270M exported to a float32 `.tflite` (prefill 16 and 64, KV cache 256) in a TensorFlow "
             "process, with each allocator preloaded. The test command preloads TCMalloc.", "",
             "| allocator | export s | vs glibc | peak RSS GiB |", "|---|---|---|---|"]
    lines += [f"| {name} | {r['seconds']:.1f} | {base / r['seconds']:.2f}x | {r['peak_rss_gib']:.1f} |"
              for name, r in rows.items()]
    write_section(SECTION, lines)


if __name__ == "__main__":
    sys.exit(main())
