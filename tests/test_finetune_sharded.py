"""Sharded tuning and generation on 8 simulated CPU devices (JAX) equal one device.

The layouts run in worker processes (8 devices need a fresh process), as jobs of the
run's background queue (`background`), each test taking its runs' outcome: one worker
runs one device and the kit's layouts in turn, another keras-hub's own layout map,
which fails."""

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

WORKER = ROOT / "tests" / "sharded_worker.py"
LAYOUTS = ("single", "data", "1x8", "2x4")
# name: (layouts, environment)
RUNS = {"kit layouts": (LAYOUTS, {}), "keras-hub layout": (("1x8",), {"GEMMA_KIT_KERAS_HUB_LAYOUT": "1"})}
WORKER_MEMORY = 2 * 2**30


def run_worker(name, folder):
    """(completed process, the folder of its LAYOUT.npz outputs) for `RUNS[name]`."""
    layouts, env = RUNS[name]
    # Backend optimization level 0: the tiny model's steps take microseconds, so LLVM's
    # optimizations only cost compile time (a fifth of the worker's), and every layout
    # is compiled alike.
    flags = "--xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0"
    environment = {**os.environ, "XLA_FLAGS": flags, **env}
    done = subprocess.run([sys.executable, str(WORKER), str(folder), *layouts], capture_output=True, text=True,
                          env=environment, timeout=900)
    return done, folder


def background_jobs(request):
    factory = request.getfixturevalue("tmp_path_factory")
    return [(f"sharded {name}", lambda name=name: run_worker(name, factory.mktemp("sharded")), WORKER_MEMORY)
            for name in RUNS]


def outputs(background):
    """{layout: its saved arrays} of the kit's layouts."""
    done, folder = background.result("sharded kit layouts")
    assert done.returncode == 0, done.stderr[-3000:]
    return {layout: np.load(folder / f"{layout}.npz") for layout in LAYOUTS}


@pytest.mark.parametrize("layout", ["data", "1x8", "2x4"])
def test_sharded_fit_and_generate_equal_one_device(layout, background):
    """8-way data parallel, and model axes of 8 and 4 on a model with 2 KV heads."""
    runs = outputs(background)
    single, sharded = runs["single"], runs[layout]
    np.testing.assert_allclose(sharded["before"], single["before"], atol=1e-4)
    np.testing.assert_allclose(sharded["loss"], single["loss"], rtol=1e-5)
    np.testing.assert_allclose(sharded["after"], single["after"], atol=1e-4)
    assert (sharded["tokens"] == single["tokens"]).all()
    assert single["loss"][-1] < single["loss"][0]  # the fit did train
    if layout != "data":  # K / V sharded on head_dim, where keras-hub puts the model axis on the 2 KV heads
        assert str(sharded["key_spec"]) == "P(None, 'batch', 'model')"


def test_keras_hub_layout_map_fails_there(background):
    """The keras-hub bug the kit's layout works around (see the reference notes)."""
    done, _ = background.result("sharded keras-hub layout")
    assert done.returncode != 0 and "IndivisibleError" in done.stderr
