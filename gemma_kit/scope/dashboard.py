"""Feature dashboards: self-contained HTML pages a person reads without writing code.

Per feature: the top activating contexts with each token shaded by its activation,
the activation density (fraction of tokens where the latent fires), a histogram of
its non-zero activations, and the logit lens of its decoder direction (top and bottom
tokens of W_dec[i] @ W_U, W_U the tied embedding). Plus a prompt page: which features
fire on which tokens of a given text. No scripts, no external files.
"""

import dataclasses
import html
import os

import keras
import numpy as np

from gemma_kit.errors import GemmaKitError
from gemma_kit.files import atomic_folder, check_output_folder
from gemma_kit.scope import sites as site_lib
from gemma_kit.scope.activations import batch_inputs, real_tokens, site_activations

_CONTEXT = 8  # tokens shown either side of a top activation
_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}table{border-collapse:collapse}
td,th{padding:.2em .6em;text-align:left;border-bottom:1px solid #ddd}
.ctx{font-family:ui-monospace,monospace;white-space:pre-wrap;line-height:1.8}
.tok{border-radius:3px;padding:0 1px}.num{font-variant-numeric:tabular-nums;text-align:right}
.muted{color:#777}a{color:#1a5fb4}"""


@dataclasses.dataclass
class FeatureReport:
    index: int
    density: float
    max_activation: float
    contexts: list  # [(activation, [(token text, activation), ...])], strongest first
    histogram: tuple  # (counts, bin edges) of non-zero activations
    top_logits: list  # [(token text, value)]
    bottom_logits: list


def check_features(sae, features, name="features"):
    """Refuse latent indices the SAE does not have (`name`: what the caller calls them)."""
    outside = [i for i in features if not 0 <= i < sae.d_sae]
    if outside:
        raise GemmaKitError(f"{name} {outside} are not latents of the SAE (it has {sae.d_sae}: 0 to {sae.d_sae - 1})")


def feature_reports(causal_lm, sae, site, texts, features, top_k=10, batch_size=8, max_length=128):
    """A `FeatureReport` per feature index, from the texts' real tokens."""
    parsed = site_lib.parse_site(causal_lm, site)
    site_lib.check_sae(causal_lm, parsed, sae)
    site = str(parsed)
    features = [int(i) for i in features]
    check_features(sae, features)
    tokenizer = causal_lm.preprocessor.tokenizer
    rows, values = [], []  # per text: token strings; latent values [seq, features]
    for start in range(0, len(texts), batch_size):
        ids, mask = batch_inputs(causal_lm, texts[start : start + batch_size], max_length)
        keep = real_tokens(causal_lm, ids, mask)
        latents = _latents(causal_lm, sae, site, ids)[..., features]
        for row in range(len(ids)):
            positions = np.flatnonzero(keep[row])
            rows.append([_piece(tokenizer, int(t)) for t in ids[row, positions]])
            values.append(latents[row, positions])
    everything = np.concatenate(values) if values else np.zeros((0, len(features)))
    lens = _logit_lens(causal_lm, sae, features)
    reports = []
    for j, index in enumerate(features):
        column = everything[:, j]
        firing = column[column > 0]
        hits = sorted(((float(v[p, j]), r, p) for r, v in enumerate(values) for p in np.flatnonzero(v[:, j] > 0)),
                      reverse=True)[:top_k]
        contexts = [(a, [(rows[r][q], float(values[r][q, j]))
                         for q in range(max(0, p - _CONTEXT), min(len(rows[r]), p + _CONTEXT + 1))])
                    for a, r, p in hits]
        counts, edges = np.histogram(firing, bins=20) if len(firing) else (np.zeros(0, int), np.zeros(0))
        top, bottom = lens[j]
        reports.append(FeatureReport(index, float(len(firing) / max(1, len(column))),
                                     float(firing.max()) if len(firing) else 0.0, contexts, (counts, edges),
                                     top, bottom))
    return reports


def write_dashboard(out, causal_lm, sae, site, texts, features, prompt=None, top_k=10, overwrite=False):
    """Write index.html, feature_{i}.html per feature and (with `prompt`) prompt.html
    into the folder `out`, atomically (a staging folder renamed into place). An
    existing `out` holding other files is refused unless `overwrite` (`gemma_kit.files`)."""
    check_output_folder(out, "dashboard", overwrite)
    reports = feature_reports(causal_lm, sae, site, texts, features, top_k)
    with atomic_folder(out, "dashboard", overwrite) as staging:
        pages = {f"feature_{r.index}.html": _feature_page(r, site, len(texts)) for r in reports}
        if prompt is not None:
            pages["prompt.html"] = _prompt_page(causal_lm, sae, site, prompt, {r.index for r in reports})
        pages["index.html"] = _index_page(reports, site, prompt is not None)
        for name, text in pages.items():
            with open(os.path.join(staging, name), "w", encoding="utf-8") as f:
                f.write(text)
    return out


def _latents(causal_lm, sae, site, ids):
    """float32 [batch, seq, d_sae]: the SAE's latents at the site for these token ids."""
    acts = site_activations(causal_lm, ids, [site])[site]
    return keras.ops.convert_to_numpy(keras.ops.cast(sae.encode(acts), "float32"))


def _piece(tokenizer, token_id):
    return str(tokenizer.id_to_token(token_id)).replace("\u2581", " ")


def _logit_lens(causal_lm, sae, features, n=10):
    tokenizer = causal_lm.preprocessor.tokenizer
    embedding = keras.ops.convert_to_numpy(keras.ops.cast(causal_lm.backbone.token_embedding.embeddings, "float32"))
    w_dec = keras.ops.convert_to_numpy(keras.ops.cast(sae.W_dec, "float32"))[features]
    scores = w_dec @ embedding.T  # [features, vocab]; a soft cap would not change the order
    result = []
    for row in scores:
        order = np.argsort(row)
        result.append(([(_piece(tokenizer, int(i)), float(row[i])) for i in order[::-1][:n]],
                       [(_piece(tokenizer, int(i)), float(row[i])) for i in order[:n]]))
    return result


def _page(title, body):
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>{body}</body></html>\n")


def _shade(tokens, scale):
    spans = []
    for text, value in tokens:
        value = max(0.0, value)  # JumpReLU gives -0.0 where it is off
        alpha = 0.0 if scale <= 0 else min(1.0, value / scale)
        spans.append(f"<span class='tok' style='background:rgba(255,120,0,{alpha:.2f})' "
                     f"title='{value:.3f}'>{html.escape(text)}</span>")
    return "".join(spans)


def _histogram_svg(counts, edges):
    if not len(counts):
        return "<p class='muted'>never fires on these texts</p>"
    width, height, top = 400, 120, max(1, int(counts.max()))
    bar = width / len(counts)
    bars = "".join(f"<rect x='{i * bar:.1f}' y='{height - c / top * height:.1f}' width='{bar - 1:.1f}' "
                   f"height='{c / top * height:.1f}' fill='#e66100'><title>{c}</title></rect>"
                   for i, c in enumerate(counts))
    return (f"<svg width='{width}' height='{height + 20}' role='img' aria-label='activation histogram'>{bars}"
            f"<text x='0' y='{height + 15}' font-size='11'>{edges[0]:.2f}</text>"
            f"<text x='{width - 40}' y='{height + 15}' font-size='11'>{edges[-1]:.2f}</text></svg>")


def _feature_page(report, site, n_texts):
    rows = "".join(f"<tr><td class='num'>{a:.3f}</td><td class='ctx'>{_shade(tokens, report.max_activation)}</td></tr>"
                   for a, tokens in report.contexts) or "<tr><td colspan='2' class='muted'>no activations</td></tr>"
    lens = "".join(f"<tr><td>{html.escape(t)}</td><td class='num'>{v:+.3f}</td><td>{html.escape(b)}</td>"
                   f"<td class='num'>{w:+.3f}</td></tr>" for (t, v), (b, w) in zip(report.top_logits,
                                                                                   report.bottom_logits))
    body = (f"<p><a href='index.html'>all features</a></p><h1>Feature {report.index} at site {html.escape(site)}</h1>"
            f"<p>Activation density: <b id='density'>{100 * report.density:.3f}%</b> of tokens "
            f"({n_texts} texts); max activation {report.max_activation:.3f}.</p>"
            f"<h2>Top activating contexts</h2><table id='contexts'><tr><th>activation</th><th>context</th></tr>"
            f"{rows}</table><h2>Activation histogram (non-zero)</h2>{_histogram_svg(*report.histogram)}"
            f"<h2>Logit lens of the decoder direction</h2><table id='lens'><tr><th>promoted</th><th></th>"
            f"<th>suppressed</th><th></th></tr>{lens}</table>")
    return _page(f"Feature {report.index}", body)


def _index_page(reports, site, has_prompt):
    rows = "".join(f"<tr><td><a href='feature_{r.index}.html'>feature {r.index}</a></td>"
                   f"<td class='num'>{100 * r.density:.3f}%</td><td class='num'>{r.max_activation:.3f}</td>"
                   f"<td>{html.escape(' '.join(t for t, _ in r.top_logits[:5]))}</td></tr>" for r in reports)
    prompt = "<p><a href='prompt.html'>Which features fire on the prompt</a></p>" if has_prompt else ""
    body = (f"<h1>SAE features at site {html.escape(site)}</h1>{prompt}<table><tr><th>feature</th><th>density</th>"
            f"<th>max</th><th>logit lens (top)</th></tr>{rows}</table>")
    return _page(f"SAE features at {site}", body)


def prompt_features(causal_lm, sae, site, prompt, per_token=5):
    """[(token text, [(latent, activation), ...])] per real token of `prompt`: its
    strongest firing latents, strongest first."""
    tokenizer = causal_lm.preprocessor.tokenizer
    ids, mask = batch_inputs(causal_lm, [prompt])
    keep = real_tokens(causal_lm, ids, mask)[0]
    latents = _latents(causal_lm, sae, site, ids)[0]
    rows = []
    for position in np.flatnonzero(keep):
        order = [int(i) for i in np.argsort(-latents[position])[:per_token] if latents[position, i] > 0]
        rows.append((_piece(tokenizer, int(ids[0, position])), [(i, float(latents[position, i])) for i in order]))
    return rows


def _prompt_page(causal_lm, sae, site, prompt, pages):
    """Per token, its strongest features; those with a page link to it."""
    rows = []
    for token, fired in prompt_features(causal_lm, sae, site, prompt):
        cells = ", ".join((f"<a href='feature_{i}.html'>{i}</a>" if i in pages else str(i)) + f" ({a:.2f})"
                          for i, a in fired)
        rows.append(f"<tr><td class='ctx'>{html.escape(token)}</td>"
                    f"<td>{cells or '<span class=muted>none</span>'}</td></tr>")
    body = (f"<p><a href='index.html'>all features</a></p><h1>Prompt at site {html.escape(site)}</h1>"
            f"<p class='ctx'>{html.escape(prompt)}</p><table id='tokens'><tr><th>token</th>"
            f"<th>strongest features (activation)</th></tr>{''.join(rows)}</table>")
    return _page("Prompt features", body)
