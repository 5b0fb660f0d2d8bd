"""Labelled evaluation data as JSONL, one text per line:

    {"prompt": "...", "response": "...", "labels": {"dangerous": 1, "hate": 0}}
    {"prompt": "...", "labels": ["harassment"]}

`response` is optional (prompt-only screening without it). `labels` maps policy names
to 0/1, or lists the violated policies; a policy not mentioned counts as 0.
"""

import dataclasses
import json

import numpy as np

from gemma_kit.errors import GemmaKitError
from gemma_kit.shield.policies import POLICIES


@dataclasses.dataclass(frozen=True)
class Dataset:
    prompts: list
    responses: list  # str or None per text
    labels: np.ndarray  # int [texts, policies]
    keys: list


def read_jsonl(path, policies=None):
    """A `Dataset` labelled for `policies` (keys; default: every built-in policy the file
    mentions). A custom policy's key may label lines once it is named in `policies`."""
    allowed = set(POLICIES) | set(policies or ())
    records = []
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    records.append(_record(path, number, line, allowed))
    except FileNotFoundError:
        raise GemmaKitError(f"{path}: file not found") from None
    except UnicodeDecodeError as e:
        raise GemmaKitError(f"{path}: not UTF-8 text (byte {e.start} of a line)") from None
    if not records:
        raise GemmaKitError(f"{path}: no records")
    mentioned = {key for _, _, labels in records for key in labels}
    keys = list(policies) if policies else [k for k in POLICIES if k in mentioned]
    if not keys:
        raise GemmaKitError(f"{path}: labels must name policies among {', '.join(POLICIES)}; found none")
    labels = np.asarray([[labels.get(k, 0) for k in keys] for _, _, labels in records], dtype=np.int64)
    return Dataset([r[0] for r in records], [r[1] for r in records], labels, keys)


def _record(path, number, line, allowed):
    where = f"{path}:{number}"
    try:
        data = json.loads(line)
    except json.JSONDecodeError as e:
        raise GemmaKitError(f"{where}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("prompt"), str):
        raise GemmaKitError(f"{where}: expected an object with a string 'prompt'")
    response = data.get("response")
    if response is not None and not isinstance(response, str):
        raise GemmaKitError(f"{where}: 'response' must be a string, found {type(response).__name__}")
    labels = data.get("labels", {})
    if isinstance(labels, list):
        labels = dict.fromkeys(labels, 1)
    if not isinstance(labels, dict):
        raise GemmaKitError(f"{where}: 'labels' must be an object or a list of policy names")
    for key, value in labels.items():
        if key not in allowed:
            raise GemmaKitError(f"{where}: unknown policy {key!r} in labels; use {', '.join(sorted(allowed))}")
        if value not in (0, 1):  # True and False compare equal to 1 and 0
            raise GemmaKitError(f"{where}: label {key!r} must be 0 or 1, found {value!r}")
    return data["prompt"], response, {k: int(v) for k, v in labels.items()}
