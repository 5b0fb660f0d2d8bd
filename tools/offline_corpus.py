"""English prose available offline: the long descriptions that installed Python
packages ship in their METADATA, and the docstrings of the standard library's modules,
split into paragraphs. Deterministic; every 10th paragraph is held out for evaluation.
"""

import email
import glob
import importlib
import os
import re
import sys
import warnings


def _good(paragraph):
    letters = sum(c.isalpha() or c in " ,.;:'-()" for c in paragraph)
    return 200 <= len(paragraph) <= 1200 and letters / len(paragraph) > 0.93 and paragraph[0].isupper()


def _paragraphs(text):
    if not isinstance(text, str):
        return []
    return [re.sub(r"\s+", " ", p).strip() for p in re.split(r"\n\s*\n", text)]


def paragraphs():
    found = []
    site_packages = os.path.join(sys.prefix, "lib", f"python{sys.version_info.major}.{sys.version_info.minor}",
                                 "site-packages")
    for path in sorted(glob.glob(os.path.join(site_packages, "*.dist-info", "METADATA"))):
        with open(path, encoding="utf-8", errors="replace") as f:
            body = email.message_from_string(f.read()).get_payload()
        if isinstance(body, str):
            found += _paragraphs(body)
    for name in sorted(sys.stdlib_module_names):
        if name.startswith("_") or name in {"antigravity", "this", "idlelib", "tkinter", "turtle"}:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = importlib.import_module(name)
        except Exception:  # noqa: BLE001 - platform-specific modules
            continue
        found += _paragraphs(module.__doc__)
        for attribute in sorted(vars(module)):
            value = getattr(module, attribute, None)
            if callable(value) and getattr(value, "__module__", None) == name:
                found += _paragraphs(getattr(value, "__doc__", None))
    unique = list(dict.fromkeys(p for p in found if p and _good(p)))
    return unique


def split():
    """(train, evaluation) paragraphs."""
    everything = paragraphs()
    return ([p for i, p in enumerate(everything) if i % 10], [p for i, p in enumerate(everything) if not i % 10])


if __name__ == "__main__":
    train, held_out = split()
    print(len(train), len(held_out), sum(len(p.split()) for p in train), "words in train")
