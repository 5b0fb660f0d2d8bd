"""On-device moderation with the default model: the exported classifier (float32 and
int8) in the LiteRT interpreter and in the browser page, against Keras ShieldGemma.

    .venv/bin/python tools/bench/guard.py

Four policies per text, one text at a time (as an app screens): the six prompts of the
ShieldGemma benchmark in the prompt-only form, and the same prompts with its ~150-token
response in the prompt-response form. Export: `export_guard("default", ...)` with the
default lengths (512 / 1024 tokens), in its own TensorFlow process (its peak RSS).
Keras: `ShieldGemma(max_length=<the same>)` on JAX, compiled, one warm run. Interpreter:
`OnDeviceGuard` (ai_edge_litert, 2 threads), one warm run. Browser: the page
(mobile_export/web) in headless Debian Chromium, LiteRT.js on WebAssembly CPU (threaded:
the page is served cross-origin isolated), texts typed by playwright-core; time to first score counts from the page's start (model
download from localhost and compilation included). Writes its section of
docs/benchmarks.md.
"""

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from common import peak_rss_gib, run_worker, serve_worker, write_section
from shield import PROMPTS, RESPONSE

SECTION = "## On-device moderation"
USES = {"prompt": None, "response": RESPONSE}


def export_worker(quantize, out):
    os.environ.update(KERAS_BACKEND="tensorflow", TF_ENABLE_ONEDNN_OPTS="0")  # as export's TF process runs
    from mobile_export.guard import export_guard

    start = time.perf_counter()
    guard = export_guard("default", out, quantize=quantize)
    return {"seconds": time.perf_counter() - start, "rss": peak_rss_gib(),
            "bytes": os.path.getsize(os.path.join(out, "guard.tflite")), "error": guard.error}


def _per_text(score):
    """{use: (scores [texts, policies], seconds per text)} of `score(prompt, response)`,
    each text once to warm up (compile) and once timed."""
    found = {}
    for use, response in USES.items():
        rows, seconds = [], []
        for prompt in PROMPTS:
            score(prompt, response)
            start = time.perf_counter()
            rows.append(score(prompt, response))
            seconds.append(time.perf_counter() - start)
        found[use] = (np.stack(rows).tolist(), statistics.mean(seconds))
    return found


def keras_worker():
    os.environ["KERAS_BACKEND"] = "jax"
    import gemma_kit
    from gemma_kit.shield import ShieldGemma
    from mobile_export.guard import DEFAULT_LENGTHS

    lm = gemma_kit.load_model("default")
    shields = {use: ShieldGemma(lm, max_length=n) for use, n in DEFAULT_LENGTHS.items()}
    found = _per_text(lambda p, r: shields["prompt" if r is None else "response"].score([p], None if r is None else [r])[0])
    return {"uses": found, "rss": peak_rss_gib()}


def interpreter_worker(folder):
    from mobile_export.guard_runtime import OnDeviceGuard

    guard = OnDeviceGuard(folder, num_threads=2)
    found = _per_text(lambda p, r: guard.score([p], None if r is None else [r])[0])
    return {"uses": found, "rss": peak_rss_gib()}


def browser(folder):
    from mobile_export.web_demo import WEB, serve

    texts = [{"prompt": p, "response": r} for r in USES.values() for p in PROMPTS]
    with serve(folder) as url:
        out = subprocess.run(["node", os.path.join(WEB, "screen.mjs"), url, json.dumps(texts)],
                             capture_output=True, text=True, timeout=1800)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    page = json.loads(out.stdout.strip().splitlines()[-1])
    results = page["results"]
    n = len(PROMPTS)
    return {"load_ms": page["loadMs"], "first_ms": results[0]["sinceStartMs"], "threads": page["threads"],
            "uses": {use: ([r["scores"] for r in results[i * n:(i + 1) * n]],
                           # the first text's time includes the first run's set-up
                           statistics.mean(r["ms"] for r in results[i * n + (i == 0):(i + 1) * n]) / 1000)
                     for i, use in enumerate(USES)}}


def main():
    keras = run_worker(__file__, ["keras"])
    rows, exports = [], {}
    with tempfile.TemporaryDirectory() as scratch:
        for quantize in ("none", "int8"):
            folder = os.path.join(scratch, quantize)
            exports[quantize] = run_worker(__file__, ["export", quantize, folder])
            runs = {"LiteRT interpreter": run_worker(__file__, ["interpreter", folder])}
            if quantize == "int8":
                runs["browser (LiteRT.js wasm)"] = page = browser(folder)
            for runtime, result in runs.items():
                for use, (scores, seconds) in result["uses"].items():
                    reference, _ = keras["uses"][use]
                    diff = np.abs(np.asarray(scores) - np.asarray(reference))
                    agree = np.mean((np.asarray(scores) >= 0.5) == (np.asarray(reference) >= 0.5))
                    rows.append((runtime, quantize, use, seconds, keras["uses"][use][1], diff.max(), agree))
    weights = {"none": "float32", "int8": "int8"}
    lines = [
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, no GPU; {time.strftime('%Y-%m-%d')}. Command: "
        "`.venv/bin/python tools/bench/guard.py` (all rows from the same run). Default model (Gemma 3 270M) as "
        "the classifier, the 4 reported harms per text, one text at a time; prompt = 6 short prompts "
        "(prompt-only form), response = the same prompts with a ~150-token response. Keras: `ShieldGemma` on "
        f"JAX, float32, compiled (peak RSS {keras['rss']:.1f} GiB). Scores compared with Keras': max |P "
        "difference| and verdict agreement at 0.5.",
        "",
        "| weights | guard.tflite MiB | export s | export peak RSS GiB |",
        "|---|---|---|---|",
        *[f"| {weights[q]} | {e['bytes'] / 2**20:.0f} | {e['seconds']:.0f} | {e['rss']:.1f} |" for q, e in exports.items()],
        "",
        "| runtime | weights | use | texts/s | ms per text | vs Keras | max P diff | verdict agreement |",
        "|---|---|---|---|---|---|---|---|",
        *[f"| {runtime} | {weights[q]} | {use} | {1 / s:.2f} | {1000 * s:.0f} | {k / s:.2f}x | {d:.4f} | {a:.2f} |"
          for runtime, q, use, s, k, d, a in rows],
        *[f"| Keras ShieldGemma (JAX) | float32 | {use} | {1 / s:.2f} | {1000 * s:.0f} | 1.00x | 0 | 1.00 |"
          for use, (_, s) in keras["uses"].items()],
        "",
        f"Browser page (int8, headless Chromium, LiteRT.js WebAssembly CPU with {page['threads']} threads; no "
        "WebGPU adapter there): ready "
        f"{page['load_ms'] / 1000:.1f} s after the page started (a {exports['int8']['bytes'] / 2**20:.0f} MiB model "
        f"from localhost, compiled); first score shown {page['first_ms'] / 1000:.1f} s after start.",
    ]
    write_section(SECTION, lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        serve_worker(sys.argv[2:], {"export": export_worker, "keras": keras_worker,
                                    "interpreter": interpreter_worker})
    else:
        main()
