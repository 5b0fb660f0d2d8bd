"""Dashboards: written by the CLI, opened in headless Chromium, checked for what they show."""

import html
import re
import shutil
import subprocess

import numpy as np
import pytest
from conftest import FIXTURES
from test_cli import run

from gemma_kit.scope import save_sae

CHROMIUM = shutil.which("chromium")
TEXTS = ["the cat sat on the mat", "an apple a day keeps the doctor away", "hello there my friend"]


def rendered(path, tmp_path):
    """The page's DOM after headless Chromium has loaded it."""
    out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", path.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def text_of(dom):
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", dom)))


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    import gemma_kit
    from test_scope_attach import random_sae

    folder = tmp_path_factory.mktemp("dash")
    save_sae(random_sae(64), folder / "sae")
    (folder / "texts.txt").write_text("\n".join(TEXTS) + "\n")
    out = run("scope", "dashboard", "--model", str(FIXTURES / "tiny_gemma2_f32.gguf"), "--sae", str(folder / "sae"),
              "--site", "1.res", "--features", "5,7", "--texts", str(folder / "texts.txt"), "--prompt", "the apple",
              "-o", str(folder / "out"))
    assert out.returncode == 0, out.stderr
    from gemma_kit.scope import load_sae
    from gemma_kit.scope.dashboard import feature_reports

    lm = gemma_kit.load_model(str(FIXTURES / "tiny_gemma2_f32.gguf"))
    reports = feature_reports(lm, load_sae(folder / "sae"), "1.res", TEXTS, [5, 7])
    return folder / "out", reports


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is installed by tools/test.sh")
def test_feature_page_in_chromium(dashboard, tmp_path):
    out, reports = dashboard
    report = reports[0]
    dom = rendered(out / "feature_5.html", tmp_path)
    text = text_of(dom)
    assert "Feature 5 at site 1.res" in text
    assert f"Activation density: {100 * report.density:.3f}%" in text
    activation, context = report.contexts[0]
    assert f"{activation:.3f}" in text and "".join(t for t, _ in context) in text
    assert len(re.findall(r"<rect ", dom)) == 20  # histogram bars
    top_token = report.top_logits[0][0]
    assert f"{report.top_logits[0][1]:+.3f}" in text and top_token in text
    # The strongest token of the top context is the most shaded.
    shades = [float(a) for a in re.findall(r"rgba\(255, ?120, ?0, ?([0-9.]+)\)", dom.split('id="contexts"')[1])[:17]]
    assert max(shades) == 1.0


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is installed by tools/test.sh")
def test_index_and_prompt_pages_in_chromium(dashboard, tmp_path):
    out, reports = dashboard
    index = text_of(rendered(out / "index.html", tmp_path))
    assert "feature 5" in index and "feature 7" in index
    prompt_dom = rendered(out / "prompt.html", tmp_path)
    assert "the apple" in text_of(prompt_dom)
    shown = [[text_of(cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
             for row in re.findall(r"<tr>(<td.*?)</tr>", prompt_dom.split('id="tokens"')[1])]
    expected, linked = expected_prompt_rows()
    assert shown == expected and any(fired != "none" for _, fired in expected)
    assert len(re.findall(r'<a href="feature_(\d+).html">\1</a>', prompt_dom)) == linked  # features with a page


def expected_prompt_rows():
    """Per real token of "the apple": its piece and up to 5 firing latents, strongest
    first, from the site activations and the SAE's encoder."""
    import gemma_kit
    from test_scope_attach import random_sae

    from gemma_kit.scope import site_activations

    lm = gemma_kit.load_model(str(FIXTURES / "tiny_gemma2_f32.gguf"))
    tokenizer = lm.preprocessor.tokenizer
    ids = [int(tokenizer.start_token_id), *np.asarray(tokenizer.tokenize("the apple")).tolist()]
    latents = np.asarray(random_sae(64).encode(site_activations(lm, [ids], ["1.res"])["1.res"][0]))
    rows, linked = [], 0
    for position, token in list(enumerate(ids))[1:]:
        order = [i for i in np.argsort(-latents[position])[:5] if latents[position, i] > 0]
        linked += sum(i in (5, 7) for i in order)
        fired = ", ".join(f"{i} ({latents[position, i]:.2f})" for i in order)
        rows.append([str(tokenizer.id_to_token(token)).replace("\u2581", " ").strip(), fired or "none"])
    return rows, linked


def test_dashboard_errors(tmp_path):
    out = run("scope", "dashboard", "--model", str(FIXTURES / "tiny_gemma2_f32.gguf"), "--sae",
              str(FIXTURES / "sae_gemma_scope.npz"), "--site", "1.res", "--features", "1", "--texts",
              str(tmp_path / "none.txt"), "-o", str(tmp_path / "o"))
    assert out.returncode == 2 and "none.txt: file not found" in out.stderr
    (tmp_path / "t.txt").write_text("hello\n")
    out = run("scope", "dashboard", "--model", str(FIXTURES / "tiny_gemma2_f32.gguf"), "--sae",
              str(FIXTURES / "sae_gemma_scope.npz"), "--site", "1.res", "--features", "1", "--texts",
              str(tmp_path / "t.txt"), "-o", str(tmp_path / "o"))
    assert out.returncode == 2 and "has d_in 16, but the site is 64 wide" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
