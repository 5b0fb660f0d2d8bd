"""`load_sae`: Gemma Scope, Gemma Scope 2 and SAELens files into a `JumpReLUSAE`.

Formats:
- Gemma Scope `params.npz`: W_enc [d_in, d_sae], W_dec [d_sae, d_in], b_enc, b_dec,
  threshold (upper- or lower-case `w_enc` / `w_dec`);
- Gemma Scope 2 folder: `params.safetensors` (w_enc, w_dec, b_enc, b_dec, threshold)
  + `config.json` (architecture "jump_relu");
- SAELens folder: `cfg.json` + `sae_weights.safetensors`; a decoder bias applied to
  the input (`apply_b_dec_to_input`) is folded into b_enc, so the layer stays plain.

Arrays are read and copied into the layer one at a time, so loading needs the SAE's
size plus its largest array, not twice its size. No pickle is ever read.
"""

import json
import os
import zipfile

import keras
import numpy as np

from gemma_kit.errors import GemmaKitError
from gemma_kit.scope.jumprelu import PARAMETERS, JumpReLUSAE


DEFAULT_SAE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "scope",
                           "gemma3_270m_9_res")


def load_sae(path, dtype="float32"):
    """A `JumpReLUSAE` from a file or folder in any of the formats above; "default" is the
    kit's own SAE for the default model's site 9.res (tools/train_default_sae.py)."""
    path = DEFAULT_SAE if path == "default" else os.fspath(path)
    if os.path.isdir(path):
        for name, reader in (("params.npz", _npz), ("params.safetensors", _gemma_scope_2),
                             ("sae_weights.safetensors", _saelens)):
            if os.path.exists(os.path.join(path, name)):
                return reader(os.path.join(path, name), dtype)
        raise GemmaKitError(f"{path}: no params.npz, params.safetensors or sae_weights.safetensors in this folder")
    if not os.path.exists(path):
        raise GemmaKitError(f"{path}: SAE file not found")
    if path.endswith(".npz"):
        return _npz(path, dtype)
    if path.endswith(".safetensors"):
        folder = os.path.dirname(path)
        reader = _saelens if os.path.exists(os.path.join(folder, "cfg.json")) else _gemma_scope_2
        return reader(path, dtype)
    raise GemmaKitError(f"{path}: expected a .npz or .safetensors SAE file, or a folder holding one")


class _Source:
    """Named arrays from one file, read one at a time, with key matching that ignores
    the case of W_enc / W_dec."""

    def __init__(self, path, keys, read):
        self.path, self.read = path, read
        self.keys = {k.lower(): k for k in keys}
        missing = [p for p in PARAMETERS if p.lower() not in self.keys]
        if missing:
            raise GemmaKitError(f"{path}: missing key(s) {', '.join(missing)}; found {sorted(keys)}")

    def shape(self, name, shapes):
        return shapes[self.keys[name.lower()]]

    def array(self, name):
        return self.read(self.keys[name.lower()])


def _npz(path, dtype):
    try:
        archive = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise GemmaKitError(f"{path}: not a readable .npz file ({e})") from None
    with archive:
        shapes = {}
        for key in archive.files:
            # The .npy header gives shape and dtype without reading the data.
            with archive.zip.open(key + ".npy") as f:
                read_header = _NPY_HEADERS.get(np.lib.format.read_magic(f))
                if read_header is None:
                    raise GemmaKitError(f"{path}: {key} uses an unsupported .npy format version")
                shapes[key], _, stored = read_header(f)
            if not np.issubdtype(stored, np.floating):
                raise GemmaKitError(f"{path}: {key} has dtype {stored}, expected a float type "
                                    "(pickled object arrays are never loaded)")
        return _build(_Source(path, archive.files, lambda k: archive[k]), shapes, dtype)


_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _safetensors(path):
    from safetensors import safe_open

    try:
        handle = safe_open(path, framework="numpy")
    except Exception as e:  # noqa: BLE001 - safetensors raises several types for a bad file
        raise GemmaKitError(f"{path}: not a readable safetensors file ({e})") from None
    return handle


def _gemma_scope_2(path, dtype):
    config_path = os.path.join(os.path.dirname(path), "config.json")
    if os.path.exists(config_path):
        architecture = _json(config_path).get("architecture", "jump_relu")
        if architecture != "jump_relu":
            raise GemmaKitError(f"{config_path}: architecture {architecture!r} is not supported (only 'jump_relu')")
    handle = _safetensors(path)
    keys = list(handle.keys())
    shapes = {k: tuple(handle.get_slice(k).get_shape()) for k in keys}
    return _build(_Source(path, keys, handle.get_tensor), shapes, dtype)


def _saelens(path, dtype):
    config_path = os.path.join(os.path.dirname(path), "cfg.json")
    config = _json(config_path)
    architecture = config.get("architecture", "jumprelu")
    if architecture != "jumprelu":
        raise GemmaKitError(f"{config_path}: architecture {architecture!r} is not supported (only 'jumprelu')")
    normalize = config.get("normalize_activations") or "none"
    if normalize != "none":
        raise GemmaKitError(f"{config_path}: normalize_activations {normalize!r} is not supported (only 'none')")
    handle = _safetensors(path)
    keys = list(handle.keys())
    shapes = {k: tuple(handle.get_slice(k).get_shape()) for k in keys}
    source = _Source(path, keys, handle.get_tensor)
    if config.get("apply_b_dec_to_input"):
        # (x - b_dec) @ W_enc + b_enc == x @ W_enc + (b_enc - b_dec @ W_enc)
        read = source.array
        source.array = lambda name: (read("b_enc") - read("b_dec") @ read("W_enc")) if name == "b_enc" else read(name)
    return _build(source, shapes, dtype)


def _build(source, shapes, dtype):
    d_in, d_sae = (int(n) for n in source.shape("W_enc", shapes))
    expected = JumpReLUSAE.shapes(d_in, d_sae)
    for name in PARAMETERS:
        found = tuple(int(n) for n in source.shape(name, shapes))
        if found != expected[name]:
            raise GemmaKitError(f"{source.path}: {name} has shape {found}, expected {expected[name]} "
                                f"(d_in {d_in}, d_sae {d_sae} from W_enc)")

    def reader(name):
        def initial_value(shape, dtype=None):
            array = source.array(name)
            if not np.issubdtype(array.dtype, np.floating):
                raise GemmaKitError(f"{source.path}: {name} has dtype {array.dtype}, expected a float type")
            return keras.ops.cast(array, dtype)  # float16 files, float32 (or bfloat16) layers

        return initial_value

    return JumpReLUSAE(d_in, d_sae, initializers={name: reader(name) for name in PARAMETERS}, dtype=dtype)


def _json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise GemmaKitError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise GemmaKitError(f"{path}: not valid JSON ({e})") from None


def save_sae(sae, folder, dtype="float32", **config):
    """Write `sae` as a Gemma Scope 2 folder (params.safetensors + config.json), which
    `load_sae` reads back, in float32 or float16; `config` adds fields such as
    hf_hook_point_in. Written to a
    temporary folder first, then renamed into place (`gemma_kit.files.atomic_folder`)."""
    from safetensors.numpy import save_file

    from gemma_kit.files import atomic_folder

    with atomic_folder(folder, "sae") as staging:
        arrays = {name.lower(): np.ascontiguousarray(keras.ops.convert_to_numpy(keras.ops.cast(getattr(sae, name),
                                                                                             dtype)))
                  for name in PARAMETERS}
        save_file(arrays, os.path.join(staging, "params.safetensors"))
        meta = {"architecture": "jump_relu", "width": sae.d_sae, "d_in": sae.d_in, **config}
        with open(os.path.join(staging, "config.json"), "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=2)
