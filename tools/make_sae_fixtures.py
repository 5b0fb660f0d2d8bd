"""Regenerate the SAE fixtures with SAELens (the reference JumpReLU implementation).

    python3 -m venv .ref/saelens && .ref/saelens/bin/pip install torch==2.13.0 sae-lens==6.54.12
    .ref/saelens/bin/python tools/make_sae_fixtures.py

Writes into tests/fixtures/:
- sae_saelens/ (cfg.json + sae_weights.safetensors), saved by SAELens itself, with
  apply_b_dec_to_input=True (SAELens' default: the decoder bias is subtracted first);
- sae_gemma_scope.npz: the same parameters as a Gemma Scope params.npz (which runs
  on raw activations, i.e. apply_b_dec_to_input=False);
- sae_reference.npz: inputs and SAELens' encode / decode / forward outputs for both.
"""

import os

import numpy as np
import torch
from sae_lens import JumpReLUSAE, JumpReLUSAEConfig

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
D_IN, D_SAE = 16, 64


def main():
    rng = np.random.default_rng(0)
    params = {"W_enc": rng.normal(0, 0.5, (D_IN, D_SAE)), "W_dec": rng.normal(0, 0.5, (D_SAE, D_IN)),
              "b_enc": rng.normal(0, 0.2, D_SAE), "b_dec": rng.normal(0, 0.2, D_IN),
              "threshold": rng.uniform(0.05, 1.0, D_SAE)}
    params = {k: v.astype(np.float32) for k, v in params.items()}
    x = rng.normal(0, 1.0, (3, 5, D_IN)).astype(np.float32)
    reference = {"x": x}
    for name, subtract in (("saelens", True), ("gemma_scope", False)):
        sae = JumpReLUSAE(JumpReLUSAEConfig(d_in=D_IN, d_sae=D_SAE, apply_b_dec_to_input=subtract))
        sae.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
        with torch.no_grad():
            f = sae.encode(torch.from_numpy(x))
            reference[f"{name}_encode"] = f.numpy()
            reference[f"{name}_decode"] = sae.decode(f).numpy()
            reference[f"{name}_forward"] = sae(torch.from_numpy(x)).numpy()
        if subtract:
            sae.save_model(os.path.join(FIXTURES, "sae_saelens"))
    np.savez(os.path.join(FIXTURES, "sae_gemma_scope.npz"), **params)
    np.savez(os.path.join(FIXTURES, "sae_reference.npz"), **reference)
    print("active fraction:", float((reference["gemma_scope_encode"] > 0).mean()))


if __name__ == "__main__":
    main()
