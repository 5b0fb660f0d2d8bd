"""A model folder checked before keras-hub reads it, so that a damaged or mismatched
file is named (file, key, expected vs found) instead of failing inside keras-hub,
safetensors or SentencePiece.

Reads only headers and small files: the config, each safetensors header (8-byte length
and JSON), the shard index and the tokenizer model.
"""

import json
import os
import re
import struct

from gemma_kit.errors import GemmaKitError

HF_MODEL_TYPES = ("gemma2", "gemma3", "gemma3_text")
# Integer fields of a Hugging Face config.json: keras-hub's Gemma converters require
# these, and take Gemma 3's others from defaults when absent.
HF_INT_FIELDS = ("hidden_size", "intermediate_size", "num_hidden_layers", "head_dim", "vocab_size",
                 "num_attention_heads", "num_key_value_heads")
_GEMMA3_REQUIRED = 4
INDEX = "model.safetensors.index.json"
_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")


def check_folder(folder):
    """Raise `GemmaKitError` naming the first problem of a Hugging Face or keras-hub
    preset folder."""
    config_path = os.path.join(folder, "config.json")
    if not os.path.isfile(config_path):
        raise GemmaKitError(f"{folder}: no config.json (expected a Hugging Face or keras-hub preset folder)")
    config = _read_json(config_path)
    if "model_type" in config:
        _check_hf(folder, config_path, config)
    else:
        _check_preset(folder, config_path, config)


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GemmaKitError(f"{path}: unreadable JSON ({e})") from None
    if not isinstance(data, dict):
        raise GemmaKitError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def _check_hf(folder, config_path, config):
    model_type = config["model_type"]
    if model_type not in HF_MODEL_TYPES:
        raise GemmaKitError(f"{config_path}: model_type {model_type!r} is not supported; "
                            f"expected one of {', '.join(HF_MODEL_TYPES)}")
    # keras-hub rebuilds a Gemma 3 tokenizer from tokenizer.json; Gemma 2 needs the .model.
    tokenizer_files = ("tokenizer.model",) if model_type == "gemma2" else ("tokenizer.model", "tokenizer.json")
    if not any(os.path.isfile(os.path.join(folder, name)) for name in tokenizer_files):
        raise GemmaKitError(f"{folder}: tokenizer is missing (a Hugging Face {model_type} folder needs "
                            f"{' or '.join(tokenizer_files)})")
    _check_sentencepiece(os.path.join(folder, "tokenizer.model"))
    fields = config.get("text_config", config) if model_type == "gemma3" else config
    if not isinstance(fields, dict):
        raise GemmaKitError(f"{config_path}: text_config must be an object, found {type(fields).__name__}")
    required = HF_INT_FIELDS if model_type == "gemma2" else HF_INT_FIELDS[:_GEMMA3_REQUIRED]
    for key in HF_INT_FIELDS:
        value = fields.get(key)
        if value is None and key not in required:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise GemmaKitError(f"{config_path}: {key} must be a positive integer, found {value!r}")
    names = _weight_names(folder)
    layers = {int(m.group(1)) for name in names for m in [_LAYER.search(name)] if m}
    expected = fields["num_hidden_layers"]
    if layers != set(range(expected)):
        raise GemmaKitError(f"{config_path}: num_hidden_layers is {expected}, but the weights hold layers "
                            f"{_ranges(layers) or 'none'}")


def _weight_names(folder):
    """Tensor names of the folder's safetensors (through the shard index if there is
    one), each file's header checked against its size."""
    index_path = os.path.join(folder, INDEX)
    if os.path.isfile(index_path):
        weight_map = _read_json(index_path).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise GemmaKitError(f"{index_path}: expected a non-empty 'weight_map' object")
        files = set(weight_map.values())
        for name in files:
            # A shard is a file of this folder: a path would let the index read elsewhere.
            if not isinstance(name, str) or os.path.basename(name) != name or name in ("", ".", ".."):
                raise GemmaKitError(f"{index_path}: weight_map names {name!r}; shards must be file names in the "
                                    "model folder")
    else:
        files = {name for name in os.listdir(folder) if name.endswith(".safetensors")}
        if not files:
            raise GemmaKitError(f"{folder}: no .safetensors weights")
    names = set()
    for name in sorted(files):
        names |= _safetensors_names(os.path.join(folder, name))
    return names


def _safetensors_names(path):
    if not os.path.isfile(path):
        raise GemmaKitError(f"{path}: weights file not found")
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        length = struct.unpack("<Q", head)[0] if len(head) == 8 else None
        if length is None or length > size - 8:
            raise GemmaKitError(f"{path}: not a safetensors file (its header length does not fit its "
                                f"{size} bytes)")
        try:
            header = json.loads(f.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise GemmaKitError(f"{path}: not a safetensors file (header is not JSON: {e})") from None
    if not isinstance(header, dict):
        raise GemmaKitError(f"{path}: not a safetensors file (header is not an object)")
    data = size - 8 - length
    for key, info in header.items():
        if key == "__metadata__":
            continue
        end = info.get("data_offsets", [0, 0])[1] if isinstance(info, dict) else None
        if not isinstance(end, int) or end > data:
            raise GemmaKitError(f"{path}: tensor {key!r} ends at byte {end} of {data} data bytes; the file is "
                                "truncated or damaged")
    return set(header) - {"__metadata__"}


def _check_sentencepiece(path):
    if not os.path.isfile(path):
        return
    import sentencepiece

    try:
        with open(path, "rb") as f:
            sentencepiece.SentencePieceProcessor(model_proto=f.read())
    except (RuntimeError, OSError) as e:
        raise GemmaKitError(f"{path}: not a SentencePiece model ({str(e).strip()[:200]})") from None


def _check_preset(folder, config_path, config):
    if not isinstance(config.get("class_name"), str) or not isinstance(config.get("config"), dict):
        raise GemmaKitError(f"{config_path}: expected a keras-hub preset config with 'class_name' and 'config' "
                            "(or a Hugging Face config with 'model_type')")
    if not os.path.isdir(os.path.join(folder, "assets", "tokenizer")):
        raise GemmaKitError(f"{folder}: assets/tokenizer is missing (a keras-hub preset folder needs its tokenizer)")
    for name in os.listdir(os.path.join(folder, "assets", "tokenizer")):
        if name.endswith((".model", ".spm")):
            _check_sentencepiece(os.path.join(folder, "assets", "tokenizer", name))


def _ranges(numbers):
    numbers = sorted(numbers)
    return f"{numbers[0]} to {numbers[-1]} ({len(numbers)} layers)" if numbers else ""
