"""Gemma Scope speed and memory: SAE encode throughput at Gemma 2 2B's residual width
against SAELens (CPU torch), and the cost of `attach` in observe mode.

    .venv/bin/python tools/bench/scope.py [--saelens-python .ref/saelens/bin/python]

Encode: random JumpReLU parameters, d_in 2304, 16k and 65k latents, 1024 tokens per
call, float32; the kit compiled on JAX; SAELens' `JumpReLUSAE.encode` under
torch.no_grad with all cores. Each runs in its own process: peak RSS is per process
(weights included). Observe overhead: the default model's eager forward pass over
128 tokens, without and with a 16k SAE observing `9.res`. Median of 3 warm runs.
"""

import argparse
import os
import platform
import time

from common import ROOT, peak_rss_gib, run_worker, serve_worker, timed, write_section

SECTION = "## Gemma Scope"
D_IN, TOKENS = 2304, 1024
WIDTHS = (16384, 65536)


def random_params(d_sae):
    import numpy as np

    rng = np.random.default_rng(0)
    return {"W_enc": rng.standard_normal((D_IN, d_sae), dtype=np.float32) * 0.02,
            "W_dec": rng.standard_normal((d_sae, D_IN), dtype=np.float32) * 0.02,
            "b_enc": np.zeros(d_sae, np.float32), "b_dec": np.zeros(D_IN, np.float32),
            "threshold": np.full(d_sae, 0.05, np.float32)}


def kit_worker(d_sae):
    os.environ["KERAS_BACKEND"] = "jax"
    import numpy as np

    from gemma_kit import runtime
    from gemma_kit.scope import JumpReLUSAE

    d_sae = int(d_sae)
    sae = JumpReLUSAE(D_IN, d_sae)
    for name, value in random_params(d_sae).items():
        getattr(sae, name).assign(value)
    encode = runtime.compile_fn(sae, sae.encode)
    x = np.random.default_rng(1).standard_normal((TOKENS, D_IN), dtype=np.float32)
    seconds = timed(lambda: np.asarray(encode(x)))
    return {"tokens_per_s": TOKENS / seconds, "rss": peak_rss_gib()}


def saelens_worker(d_sae):
    import torch
    from sae_lens import JumpReLUSAE, JumpReLUSAEConfig

    torch.set_num_threads(os.cpu_count())
    d_sae = int(d_sae)
    sae = JumpReLUSAE(JumpReLUSAEConfig(d_in=D_IN, d_sae=d_sae, apply_b_dec_to_input=False))
    sae.load_state_dict({k: torch.from_numpy(v) for k, v in random_params(d_sae).items()})
    x = torch.randn(TOKENS, D_IN)
    with torch.no_grad():
        seconds = timed(lambda: sae.encode(x))
    return {"tokens_per_s": TOKENS / seconds, "rss": peak_rss_gib()}


def observe_worker():
    os.environ["KERAS_BACKEND"] = "jax"
    import numpy as np

    import gemma_kit
    from gemma_kit.scope import JumpReLUSAE, attach

    lm = gemma_kit.load_model("default")
    ids = np.asarray([[2] + [(7919 * i) % 200000 + 1000 for i in range(127)]])
    plain = timed(lambda: gemma_kit.logits(lm, ids))
    sae = JumpReLUSAE(lm.backbone.hidden_dim, 16384)
    with attach(lm, {"9.res": sae}, "observe") as attached:
        observed = timed(lambda: gemma_kit.logits(lm, ids))
    assert attached.records["9.res"]["latents"]
    return {"plain": plain, "observed": observed}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", nargs="+")
    parser.add_argument("--saelens-python", default=os.path.join(ROOT, ".ref", "saelens", "bin", "python"))
    args = parser.parse_args()
    if args.worker:
        serve_worker(args.worker, {"kit": kit_worker, "saelens": saelens_worker, "observe": observe_worker})
        return
    rows = [(w, run_worker(__file__, ["kit", str(w)]), run_worker(__file__, ["saelens", str(w)], args.saelens_python))
            for w in WIDTHS]
    observe = run_worker(__file__, ["observe"])
    lines = ["", f"Machine: {platform.machine()}, {os.cpu_count()} cores, no GPU; {time.strftime('%Y-%m-%d')}. "
             "Command: `.venv/bin/python tools/bench/scope.py` (all rows from the same run). Encode of 1024 "
             f"tokens at d_in {D_IN}, float32, random JumpReLU parameters; the kit compiled on JAX, SAELens "
             "6.54 on CPU torch 2.13; median of 3 warm runs; peak RSS of each worker process.", "",
             "| latents | kit tokens/s | SAELens tokens/s | kit / SAELens | kit peak RSS GiB | SAELens peak RSS GiB |",
             "|---|---|---|---|---|---|"]
    for width, kit, saelens in rows:
        lines.append(f"| {width:,} | {kit['tokens_per_s']:,.0f} | {saelens['tokens_per_s']:,.0f} | "
                     f"{kit['tokens_per_s'] / saelens['tokens_per_s']:.2f}x | {kit['rss']:.2f} | "
                     f"{saelens['rss']:.2f} |")
    lines += ["", f"`attach` in observe mode (a 16k SAE at `9.res` of the default model, eager JAX forward pass "
              f"over 128 tokens): {observe['plain'] * 1000:.0f} ms without, {observe['observed'] * 1000:.0f} ms "
              f"with ({observe['observed'] / observe['plain']:.2f}x)."]
    write_section(SECTION, lines)


if __name__ == "__main__":
    main()
