"""Per-policy decision thresholds: a violation is a score >= its policy's threshold.

Saved as JSON (`{"format": "gemma-kit-thresholds", "version": 1, "thresholds": {...}}`
plus how they were chosen), written atomically.
"""

import json
import math
import os

from gemma_kit.errors import GemmaKitError
from gemma_kit.files import atomic_file

FORMAT = "gemma-kit-thresholds"


def resolve(thresholds, keys):
    """{key: threshold} for these policy keys, from a number, a dict or a JSON file path."""
    if isinstance(thresholds, (str, os.PathLike)):
        thresholds = load(thresholds)
    if isinstance(thresholds, (int, float)) and not isinstance(thresholds, bool):
        thresholds = dict.fromkeys(keys, float(thresholds))
    if not isinstance(thresholds, dict):
        raise GemmaKitError(f"thresholds must be a number, a dict or a JSON file, found {type(thresholds).__name__}")
    missing = [k for k in keys if k not in thresholds]
    if missing:
        raise GemmaKitError(f"no threshold for policy {', '.join(map(repr, missing))}; have {sorted(thresholds)}")
    return {k: _check(k, thresholds[k]) for k in keys}


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise GemmaKitError(f"{path}: thresholds file not found") from None
    except json.JSONDecodeError as e:
        raise GemmaKitError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("thresholds"), dict):
        raise GemmaKitError(f"{path}: expected a {FORMAT!r} JSON object with a 'thresholds' mapping")
    return {k: _check(f"{path}: {k}", v) for k, v in data["thresholds"].items()}


def save(path, thresholds, **details):
    """Write thresholds (and details such as the method and metrics) atomically."""
    data = {"format": FORMAT, "version": 1, "thresholds": {k: float(v) for k, v in thresholds.items()}, **details}
    with atomic_file(path) as staging, open(staging, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")


def _check(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or not 0 <= value <= 1:
        raise GemmaKitError(f"threshold for {name} must be a number in [0, 1], found {value!r}")
    return float(value)
