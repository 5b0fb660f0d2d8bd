"""JumpReLU SAE maths and files, against SAELens' outputs (tools/make_sae_fixtures.py)."""

import json

import keras
import numpy as np
import pytest
from conftest import FIXTURES
from safetensors.numpy import save_file

from gemma_kit.errors import GemmaKitError
from gemma_kit.scope import JumpReLUSAE, load_sae

pytestmark = pytest.mark.backends
REF = dict(np.load(FIXTURES / "sae_reference.npz", allow_pickle=False))
PARAMS = dict(np.load(FIXTURES / "sae_gemma_scope.npz", allow_pickle=False))


def check(sae, name):
    f = keras.ops.convert_to_numpy(sae.encode(REF["x"]))
    np.testing.assert_allclose(f, REF[f"{name}_encode"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(sae.decode(REF[f"{name}_encode"])),
                               REF[f"{name}_decode"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(sae(REF["x"])), REF[f"{name}_forward"], atol=1e-5, rtol=0)
    assert 0.1 < (f > 0).mean() < 0.9  # the threshold really cuts


def test_gemma_scope_npz_matches_saelens():
    check(load_sae(FIXTURES / "sae_gemma_scope.npz"), "gemma_scope")


def test_lower_case_keys(tmp_path):
    np.savez(tmp_path / "params.npz", **{k.lower(): v for k, v in PARAMS.items()})
    check(load_sae(tmp_path), "gemma_scope")


def test_saelens_folder_with_decoder_bias_on_input_matches_saelens():
    check(load_sae(FIXTURES / "sae_saelens"), "saelens")


def test_gemma_scope_2_folder(tmp_path):
    save_file({k.lower(): v for k, v in PARAMS.items()}, str(tmp_path / "params.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({"architecture": "jump_relu", "width": 64}))
    check(load_sae(tmp_path), "gemma_scope")
    (tmp_path / "config.json").write_text(json.dumps({"architecture": "topk"}))
    with pytest.raises(GemmaKitError, match="'topk' is not supported"):
        load_sae(tmp_path)


def test_keras_save_and_load(tmp_path):
    sae = load_sae(FIXTURES / "sae_gemma_scope.npz")
    inputs = keras.Input((None, 16))
    model = keras.Model(inputs, sae(inputs))
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again(REF["x"])), REF["gemma_scope_forward"], atol=1e-5)


def test_bfloat16_weights():
    sae = load_sae(FIXTURES / "sae_gemma_scope.npz", dtype="bfloat16")
    assert sae.W_enc.dtype == "bfloat16"
    out = keras.ops.convert_to_numpy(keras.ops.cast(sae(REF["x"]), "float32"))
    assert np.abs(out - REF["gemma_scope_forward"]).max() < 0.5


@pytest.mark.parametrize("change, match", [
    (lambda p: p.pop("threshold"), "missing key.*threshold"),
    (lambda p: p.__setitem__("b_dec", np.zeros(15, np.float32)), r"b_dec has shape \(15,\), expected \(16,\)"),
    (lambda p: p.__setitem__("b_enc", np.zeros(64, np.int32)), "b_enc has dtype int32"),
    (lambda p: p.__setitem__("b_enc", np.array([None] * 64)), "b_enc has dtype object"),
])
def test_bad_files_name_the_problem(tmp_path, change, match):
    params = dict(PARAMS)
    change(params)
    np.savez(tmp_path / "params.npz", **params)
    with pytest.raises(GemmaKitError, match=match) as error:
        load_sae(tmp_path / "params.npz")
    assert "params.npz" in str(error.value)


def test_missing_and_unknown_paths(tmp_path):
    with pytest.raises(GemmaKitError, match="not found"):
        load_sae(tmp_path / "nope.npz")
    with pytest.raises(GemmaKitError, match="no params.npz"):
        load_sae(tmp_path)
    with pytest.raises(GemmaKitError, match="positive"):
        JumpReLUSAE(0, 4)


MEMORY_PROBE = """
import resource, sys
import numpy as np
from gemma_kit.scope import load_sae
load_sae(sys.argv[2])  # the backend and its allocator warmed up on a small file
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
sae = load_sae(sys.argv[1])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) * 1024)
"""


def test_loading_does_not_need_twice_the_size(tmp_path):
    import os
    import subprocess
    import sys

    rng = np.random.default_rng(0)
    d_in, d_sae = 2304, 16384
    path = tmp_path / "params.npz"
    np.savez(path, W_enc=rng.standard_normal((d_in, d_sae), dtype=np.float32),
             W_dec=rng.standard_normal((d_sae, d_in), dtype=np.float32), b_enc=np.zeros(d_sae, np.float32),
             b_dec=np.zeros(d_in, np.float32), threshold=np.ones(d_sae, np.float32))
    size = os.path.getsize(path)
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(path), str(FIXTURES / "sae_gemma_scope.npz")],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    growth = int(out.stdout.split()[-1])
    assert growth < 1.6 * size, growth / size
