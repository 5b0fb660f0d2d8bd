"""The on-device classifier made from the real default model (Gemma 3 270M): float32
scores equal Keras ShieldGemma's, int8 stays close, on real weights."""

import numpy as np
import pytest
from reference_strings import SHIELD_CASES

from gemma_kit.shield import ShieldGemma
from mobile_export.guard import export_guard
from mobile_export.guard_runtime import OnDeviceGuard

pytestmark = pytest.mark.slow
# The fewest signatures the template allows, two per use (each converted signature costs
# about 20 s here): every case fits the shorter one (at most 90 prefix tokens). The
# choice among more prefix lengths is tested on the tiny models (test_guard_export).
LENGTHS = {"prompt": 256, "response": 256}
# float32 and int8; notebook 06 exports the int8 one with the same options.
SHARED_EXPORTS = [(export_guard, "default", q, {"lengths": LENGTHS, "quantize": q}) for q in ("none", "int8")]


@pytest.fixture(scope="module")
def folders(tmp_path_factory, shared_exports):
    root = tmp_path_factory.mktemp("default_guard")
    return {name: function(source, root / name, **options) for function, source, name, options in SHARED_EXPORTS}


@pytest.mark.parametrize("use", ["prompt", "response"])
def test_scores_against_keras(default_lm, folders, use):
    """float32 within 1e-4 of Keras (the issue asks 1e-3); int8 within 0.25, 0.08 on
    average (measured: at most 0.15, about 0.05 on average; docs/benchmarks.md)."""
    prompts = [p for p, _ in SHIELD_CASES]
    responses = [r or "" for _, r in SHIELD_CASES] if use == "response" else None
    expected = ShieldGemma(default_lm, max_length=LENGTHS[use]).score(prompts, responses)
    float32 = OnDeviceGuard(folders["none"].path).score(prompts, responses)
    int8 = OnDeviceGuard(folders["int8"].path).score(prompts, responses)
    assert np.abs(float32 - expected).max() <= 1e-4
    assert 1e-4 < np.abs(int8 - expected).max() <= 0.25 and np.abs(int8 - expected).mean() <= 0.08
    assert np.ptp(expected) > 0.05  # real weights: the scores spread, so the checks can fail


def test_int8_export_reports_its_error(folders):
    error = folders["int8"].error
    assert set(error) == {"prompt", "response"}
    assert all(e["max_abs"] <= 0.25 and e["agreement"] >= 0.75 for e in error.values())
