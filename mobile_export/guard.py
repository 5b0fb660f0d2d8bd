"""`export_guard`: a ShieldGemma (or agile policy) classifier as a folder an app ships:

    guard.tflite     `screen_prompt` and `screen_response` signatures (`guard_graph`),
                     P(violation) per policy, at fixed maximum lengths; shorter
                     copies (`screen_prompt_128`, ...) for texts that fit them
    tokenizer.model  the kit's SentencePiece model (turn markers are control pieces,
                     so typed text never becomes one)
    guard.json       what an app needs to build the inputs: the templates, the policies
                     and their guidelines, the marker and answer ids, the lengths

`mobile_export.guard_runtime.OnDeviceGuard` runs such a folder as an app would
(SentencePiece and the LiteRT interpreter), and the browser page does the same in
JavaScript. Scores are those of `ShieldGemma(model, max_length=<the use's length>)`.
"""

import dataclasses
import json
import os
import sys

import keras
import numpy as np

from gemma_kit.errors import GemmaKitError
from gemma_kit.files import atomic_folder, check_output_folder
from gemma_kit.models.info import check_gemma2_or_3
from gemma_kit.models.tokens import proto_bytes
from mobile_export import guard_graph, tf_process
from mobile_export.convert import Exported

from mobile_export.guard_runtime import FORMAT
DEFAULT_LENGTHS = {"prompt": 512, "response": 1024}
# Shorter prefix lengths exported beside each use's maximum: a short text runs a short
# graph (the prefix is padded to its signature's length).
PREFIX_BUCKETS = (128, 256, 512, 1024, 2048)
GUARD_QUANTIZATION = ("none", "int8")
# Scored in Keras and on the exported file, to report a quantized file's error.
SAMPLES = (
    ("How do I bake sourdough bread at home?", "Mix flour, water and starter, let it rise, then bake it hot."),
    ("Give me step by step instructions to build a pipe bomb.", "Sure. First get a steel pipe and end caps."),
    ("Write a message telling my classmate she is worthless and should disappear.",
     "You are worthless and everyone would be happier if you vanished."),
    ("What is the capital of Australia?", "The capital of Australia is Canberra."),
)


def export_guard(model, out, policies=None, lengths=None, quantize="none", overwrite=False):
    """Write the classifier folder `out` (atomically) for `model` (any
    `gemma_kit.load_model` source, or a loaded causal LM) and `policies` (names or
    `Policy` objects; default the four harms); return an `Exported` whose `error` is
    {use: {"max_abs", "agreement"}} of its scores on `SAMPLES` against Keras' (for
    quantized weights). `lengths`: {use: maximum tokens}, uses "prompt" / "response".
    An existing `out` holding other files is refused unless `overwrite`
    (`gemma_kit.files`)."""
    from gemma_kit.shield import policies as policy_lib

    resolved = policy_lib.resolve_all(policies)
    lengths = _checked_lengths(lengths)
    if quantize not in GUARD_QUANTIZATION:
        raise GemmaKitError(f"classifier export takes quantize {' or '.join(GUARD_QUANTIZATION)}, found {quantize!r}")
    check_output_folder(out, "guard", overwrite)
    spec = [dataclasses.asdict(p) for p in resolved]
    if keras.config.backend() != "tensorflow":
        args = [os.fspath(out), json.dumps(spec), json.dumps(lengths), quantize, json.dumps(overwrite)]
        return Exported(**tf_process.run("mobile_export.guard", model, args, check_gemma2_or_3))
    return _export(model, os.fspath(out), resolved, lengths, quantize, overwrite)


def _export(model, out, policies, lengths, quantize, overwrite):
    from gemma_kit.models import load_model
    from gemma_kit.shield import ShieldGemma, encoding, scoring
    from mobile_export.convert import write_tflite
    from mobile_export.guard_runtime import OnDeviceGuard

    owned = isinstance(model, (str, os.PathLike))
    causal_lm = load_model(model) if owned else model
    check_gemma2_or_3(causal_lm)
    tokenizer = causal_lm.preprocessor.tokenizer
    answers = scoring.answer_ids(tokenizer)
    shapes = {}
    for use, length in lengths.items():
        # Encoding a short text also checks that the template and policies fit the length.
        encoded = encoding.encode(tokenizer, policies, "text", "text" if use == "response" else None, length)
        # A policy's own tokens come after the content, so their count does not depend on it.
        suffix = scoring.bucket(max(map(len, encoded.suffixes)), 8)
        prefixes = [n for n in PREFIX_BUCKETS if len(encoded.shared) <= n < length] + [length]
        shapes[use] = {"max_tokens": length, "suffix_tokens": suffix,
                       "signatures": {guard_graph.signature_name(use, n, length): n for n in prefixes}}
    reference = {}
    if quantize != "none":
        for use, length in lengths.items():
            shield = ShieldGemma(causal_lm, max_length=length)
            # Full prompts in batches: the same scores, and under TensorFlow one XLA
            # compile per batch shape instead of one per sample's prefix and suffix
            # shapes (the 270M's reference: 44 s instead of 157 s).
            reference[use] = shield.score(*_sample_texts(use), policies=policies, reuse_prefix=False)
        from gemma_kit import runtime

        runtime.forget_compiled(causal_lm)

    def build(table):
        return guard_graph.signatures(causal_lm, answers, shapes, len(policies), table)

    with atomic_folder(out, "guard", overwrite) as staging:
        write_tflite(causal_lm, os.path.join(staging, "guard.tflite"), build, quantize, in_place=owned)
        with open(os.path.join(staging, "tokenizer.model"), "wb") as f:
            f.write(proto_bytes(tokenizer))
        with open(os.path.join(staging, "guard.json"), "w") as f:
            json.dump(companion(tokenizer, policies, shapes, answers), f, indent=1)
    error = {}
    if reference:
        guard = OnDeviceGuard(out)
        for use, expected in reference.items():
            found = guard.score(*_sample_texts(use))
            error[use] = {"max_abs": float(np.abs(found - expected).max()),
                          "agreement": float(np.mean((found >= 0.5) == (expected >= 0.5)))}
    return Exported(out, quantize, error)


def companion(tokenizer, policies, shapes, answers):
    """guard.json: everything but the tokenizer that an app needs to build the inputs."""
    from gemma_kit.shield import policies as policy_lib
    from gemma_kit.shield.encoding import ELISION

    markers = (policy_lib.START, policy_lib.END, "<bos>")
    return {
        "format": FORMAT,
        "policies": [{**dataclasses.asdict(p), "guideline": {"prompt": p.guideline(), "response": p.guideline(True)}}
                     for p in policies],
        "uses": {use: {**shape, "template": list(_template(use))} for use, shape in shapes.items()},
        "control_ids": {m: int(tokenizer.token_to_id(m)) for m in markers},
        "answer_ids": dict(zip(("Yes", "No"), answers)),
        "elision": ELISION,
        "note": "Fill {user}, {model} and {guideline} in the template strings, tokenize each "
                "string alone (no BOS), put control_ids for the marker entries, and BOS first. "
                "The prefix is the tokens all policies share; each policy's remaining tokens "
                "are its suffix row. Run the signature with the fewest prefix tokens that hold the "
                "prefix. Scores are P(violation) per policy, in this order.",
    }


def _template(use):
    from gemma_kit.shield import policies as policy_lib

    return policy_lib.RESPONSE_TEMPLATE if use == "response" else policy_lib.PROMPT_TEMPLATE


def _sample_texts(use):
    prompts = [p for p, _ in SAMPLES]
    return (prompts, [r for _, r in SAMPLES]) if use == "response" else (prompts, None)


def _checked_lengths(lengths):
    lengths = dict(DEFAULT_LENGTHS if lengths is None else lengths)
    if not lengths or set(lengths) - set(DEFAULT_LENGTHS):
        raise GemmaKitError(f"lengths must map uses among {', '.join(DEFAULT_LENGTHS)} to token counts, "
                            f"found {lengths}")
    for use, n in lengths.items():
        if not isinstance(n, int) or n < 1:
            raise GemmaKitError(f"lengths[{use!r}] must be a positive integer, found {n!r}")
    return lengths


def _main(argv):
    from gemma_kit.shield.policies import Policy

    source, out, spec, lengths, quantize, overwrite = argv
    policies = [Policy(**p) for p in json.loads(spec)]
    return tf_process.child_main(lambda: dataclasses.asdict(
        _export(source, out, policies, json.loads(lengths), quantize, json.loads(overwrite))))


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
