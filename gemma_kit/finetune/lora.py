"""LoRA and QLoRA on keras-hub Gemma models: enable, save / load adapters, merge.

Built on keras-hub's `backbone.enable_lora` (which freezes the backbone and gives the
chosen `EinsumDense` layers float32 factors A, B with the update `alpha / rank * A @ B`)
and Keras' own int8 / int4 quantization of the frozen base (QLoRA). Adapters are saved
as safetensors (the factors of each adapted layer, by layer path, plus rank, alpha and
targets in the header), not keras-hub's `.lora.h5`.

Keras is imported where it is used: the CLI reads this module's names (`TARGETS`,
`QUANTIZATION_MODES`) to build its parser, before `--backend` has chosen the backend.
"""

import contextlib
import gc
import json
import os
import warnings

import numpy as np

from gemma_kit.errors import GemmaKitError
from gemma_kit.files import atomic_file, atomic_folder

# User-facing target names (the Hugging Face PEFT ones) -> keras-hub layer names.
TARGETS = {"query": "query", "key": "key", "value": "value", "output": "attention_output",
           "gate": "ffw_gating", "up": "ffw_gating_2", "down": "ffw_linear"}
DEFAULT_TARGETS = ("query", "value")
ATTENTION_AND_MLP = tuple(TARGETS)
QUANTIZATION_MODES = ("int8", "int4")
_FORMAT = "gemma-kit-lora"


def quantize(causal_lm, mode):
    """Quantize the backbone's weights in place (the QLoRA base), int8 or int4 (Keras'
    per-channel int8, block-128 int4). On the backbone: keras-hub's task-level
    `quantize` fails on models loaded from a preset folder."""
    if mode not in QUANTIZATION_MODES:
        raise GemmaKitError(f"quantize mode {mode!r} is not one of {', '.join(QUANTIZATION_MODES)}")
    from gemma_kit import runtime

    # Compiled functions hold the float weights; dropped first, each float kernel is
    # freed as it is quantized.
    runtime.forget_compiled(causal_lm)
    embedding = causal_lm.backbone.token_embedding
    with warnings.catch_warnings(), _one_collection():  # warnings: one per norm layer Keras leaves as it is
        warnings.filterwarnings("ignore", message=".*does not have a `quantize` method")
        # The embedding last: Keras quantizes it through several full-size float
        # temporaries (9 GB for a 2B's), which fit once the other kernels are int8.
        causal_lm.backbone.quantize(mode, filters=lambda layer: layer is not embedding)
        causal_lm.backbone.quantize(mode, filters=lambda layer: layer is embedding)
    return causal_lm


@contextlib.contextmanager
def _one_collection():
    """Keras' `Layer.__delattr__` runs a full `gc.collect()` for every variable it drops,
    and quantizing drops every layer's float kernel: for the 270M, 127 collections and
    27 of its 34 s in TensorFlow or JAX. Reference counting frees the kernels as before
    (the same peak memory, measured), so one collection at the end is enough."""
    collect = gc.collect
    gc.collect = lambda generation=2: 0
    try:
        yield
    finally:
        gc.collect = collect
        gc.collect()


def quantized_modes(causal_lm):
    """The Keras quantization modes in the model's layers (empty for a float model)."""
    return {layer.quantization_mode for layer in causal_lm.backbone._flatten_layers() if layer.quantization_mode}


def check_targets(targets):
    unknown = [t for t in targets if t not in TARGETS]
    if unknown or not targets:
        raise GemmaKitError(f"LoRA targets {unknown or list(targets)} are not among {', '.join(TARGETS)}")


def enable_lora(causal_lm, rank=8, alpha=None, targets=DEFAULT_TARGETS):
    """Freeze the model and add rank-`rank` adapters to the `targets` (names from
    `TARGETS`) of every decoder block; the update is scaled by `alpha / rank` (alpha
    defaults to rank). Returns the adapted layers."""
    if not isinstance(rank, int) or rank < 1:
        raise GemmaKitError(f"LoRA rank must be a positive integer, found {rank!r}")
    check_targets(targets)
    if adapted_layers(causal_lm):
        raise GemmaKitError("LoRA is already enabled on this model")
    backbone = causal_lm.backbone
    backbone.enable_lora(rank, target_layer_names=[TARGETS[t] for t in targets])
    layers = adapted_layers(causal_lm)
    for layer in layers:
        layer.lora_alpha = float(alpha if alpha is not None else rank)
    backbone._gemma_kit_lora = {"rank": rank, "alpha": float(alpha if alpha is not None else rank),
                                "targets": list(targets)}
    from gemma_kit import runtime

    runtime.forget_compiled(causal_lm)
    return layers


def adapted_layers(causal_lm):
    return [layer for layer in causal_lm.backbone._flatten_layers(include_self=False)
            if getattr(layer, "lora_enabled", False)]


def lora_config(causal_lm):
    config = getattr(causal_lm.backbone, "_gemma_kit_lora", None)
    if config is None or not adapted_layers(causal_lm):
        raise GemmaKitError("this model has no LoRA adapters (call enable_lora first)")
    return dict(config)


def save_adapter(causal_lm, path):
    """Write the adapters to `path` (.safetensors), atomically."""
    import keras
    from safetensors.numpy import save_file

    config = lora_config(causal_lm)
    tensors = {}
    for layer in adapted_layers(causal_lm):
        tensors[f"{layer.path}/lora_kernel_a"] = keras.ops.convert_to_numpy(layer.lora_kernel_a)
        tensors[f"{layer.path}/lora_kernel_b"] = keras.ops.convert_to_numpy(layer.lora_kernel_b)
    with atomic_file(path) as staging:
        save_file(tensors, staging, metadata={"format": _FORMAT, "config": json.dumps(config)})
    return os.fspath(path)


def load_adapter(causal_lm, path):
    """Add the adapters saved at `path` to the model (enabling LoRA as they were
    trained). The whole file is checked against the model (names, ranks, shapes)
    before the model changes, so a refused file leaves it as it was."""
    from safetensors import safe_open

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise GemmaKitError(f"{path}: file not found")
    try:
        with safe_open(path, framework="numpy") as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except Exception as e:  # noqa: BLE001 - safetensors raises several types for bad files
        raise GemmaKitError(f"{path}: not a safetensors file ({e})") from None
    if metadata.get("format") != _FORMAT:
        raise GemmaKitError(f"{path}: not a gemma-kit LoRA adapter (header format {metadata.get('format')!r})")
    config = _adapter_config(path, metadata)
    adapted = adapted_layers(causal_lm)
    if adapted and lora_config(causal_lm) != config:
        raise GemmaKitError(f"{path}: adapter {config} does not match the model's LoRA {lora_config(causal_lm)}")
    _check_adapter(path, tensors, adapted or _target_layers(causal_lm, config["targets"]), config["rank"])
    if not adapted:
        enable_lora(causal_lm, config["rank"], config["alpha"], config["targets"])
    for layer in adapted_layers(causal_lm):
        for name in ("lora_kernel_a", "lora_kernel_b"):
            variable, value = getattr(layer, name), tensors[f"{layer.path}/{name}"]
            if tuple(value.shape) != tuple(variable.shape):  # a quantized kernel's LoRA shape, known only now
                raise GemmaKitError(f"{path}: {layer.path}/{name} has shape {tuple(value.shape)}, "
                                    f"the model expects {tuple(variable.shape)}")
            variable.assign(value.astype(np.float32))
    return causal_lm


def _adapter_config(path, metadata):
    try:
        config = json.loads(metadata.get("config", ""))
        rank, alpha, targets = config["rank"], float(config["alpha"]), list(config["targets"])
    except (ValueError, KeyError, TypeError) as e:
        raise GemmaKitError(f"{path}: the adapter's LoRA settings are unreadable ({e!r})") from None
    if not isinstance(rank, int) or rank < 1 or not alpha > 0:
        raise GemmaKitError(f"{path}: the adapter's LoRA rank {rank!r} and alpha {alpha!r} must be positive")
    check_targets(targets)
    return {"rank": rank, "alpha": alpha, "targets": targets}


def _target_layers(causal_lm, targets):
    """The layers `enable_lora` would adapt for `targets`, found without changing the model."""
    names = {TARGETS[t] for t in targets}
    return [layer for layer in causal_lm.backbone._flatten_layers(include_self=False)
            if layer.name in names and layer.weights and hasattr(layer, "enable_lora")]


def _check_adapter(path, tensors, layers, rank):
    expected = {f"{layer.path}/{name}" for layer in layers for name in ("lora_kernel_a", "lora_kernel_b")}
    missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
    if missing or extra:
        raise GemmaKitError(f"{path}: adapter tensors do not fit this model: missing {missing[:3]}, "
                            f"unexpected {extra[:3]}")
    for layer in layers:
        a, b = tensors[f"{layer.path}/lora_kernel_a"].shape, tensors[f"{layer.path}/lora_kernel_b"].shape
        # A float kernel gives the exact shapes; a quantized one is packed, so only the rank is known here.
        kernel = tuple(layer.kernel.shape) if not layer.quantization_mode else None
        fits = a[-1:] == (rank,) and b[:1] == (rank,) and len(b) == 2
        if not fits or (kernel and (a != kernel[:-1] + (rank,) or b[1] != kernel[-1])):
            raise GemmaKitError(f"{path}: {layer.path} has LoRA shapes {a} and {b}; the model expects rank "
                                f"{rank}" + (f" and {kernel[:-1] + (rank,)}, {(rank, kernel[-1])}" if kernel else ""))


def merge(causal_lm, preset_dir, overwrite=False):
    """Save the model with its adapters merged into the base weights as a keras-hub
    preset (Keras merges on save: `kernel + alpha / rank * A @ B`, re-quantized for an
    int8 / int4 base), and return the model loaded back from it: a plain keras-hub
    model without LoRA layers, which `gemma_kit.load_model(preset_dir)` also reads.
    An existing `preset_dir` holding other files is refused unless `overwrite`."""
    from gemma_kit.models import load_model

    lora_config(causal_lm)
    save_preset(causal_lm, preset_dir, overwrite)
    return load_model(os.fspath(preset_dir))


def save_preset(causal_lm, preset_dir, overwrite=False):
    """`causal_lm.save_to_preset`, written to a staging folder and renamed into place
    (`gemma_kit.files.atomic_folder`: a folder holding other files is refused unless
    `overwrite`)."""
    with atomic_folder(preset_dir, "preset", overwrite) as staging:
        causal_lm.save_to_preset(staging)
    return os.fspath(preset_dir)
