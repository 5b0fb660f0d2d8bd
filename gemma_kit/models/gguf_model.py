"""Gemma 2 / Gemma 3 GGUF files (llama.cpp, Ollama) as keras-hub CausalLMs.

The file's metadata is turned into the Hugging Face config that keras-hub's own
transformers converters read, and its tensors are served to those converters under
their Hugging Face names. keras-hub keeps the one copy of the weight layout logic.
"""

import math
import os
import sys

import gguf
import numpy as np

from gemma_kit.errors import GemmaKitError
from gemma_kit.models import tokens
from gemma_kit.models.keras_hub_fixes import placeholder_weights, set_proto

SUPPORTED_ARCHITECTURES = ("gemma2", "gemma3")

# llama.cpp picks the query scale from the model size, not from a metadata key: the
# 27B geometries (46 layers for Gemma 2, 62 for Gemma 3) scale by hidden/heads.
_LAYERS_27B = {"gemma2": 46, "gemma3": 62}

_LAYER_TENSORS = {
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "post_attention_norm",
    "pre_feedforward_layernorm": "ffn_norm",
    "post_feedforward_layernorm": "post_ffw_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "self_attn.q_norm": "attn_q_norm",
    "self_attn.k_norm": "attn_k_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def is_gguf(path):
    with open(path, "rb") as f:
        return f.read(4) == b"GGUF"


class ArrayReader(gguf.GGUFReader):
    """gguf's reader, reading each metadata array in one go. Its own takes every element
    as separate numpy memmap views: 8 s for the 262k tokens, scores and types of a Gemma
    vocabulary, on every load. The fields are the same (`contents()` gives the same
    values); nested arrays are left to the base class."""

    def _get_field_parts(self, orig_offs, raw_type):
        if raw_type != gguf.GGUFValueType.ARRAY:
            return super()._get_field_parts(orig_offs, raw_type)
        raw_itype = self._get(orig_offs, np.uint32)
        length = self._get(orig_offs + 4, np.uint64)
        item_type, count, offs = gguf.GGUFValueType(int(raw_itype[0])), int(length[0]), orig_offs + 12
        types = [gguf.GGUFValueType.ARRAY, item_type] if count else [gguf.GGUFValueType.ARRAY]
        scalar = self.gguf_scalar_to_np.get(item_type)
        if scalar is not None:
            values = self._get(offs, scalar, count)
            return 12 + int(values.nbytes), [raw_itype, length, values], [2] if count else [], types
        if item_type != gguf.GGUFValueType.STRING:
            return super()._get_field_parts(orig_offs, raw_type)
        # Plain ndarray views of the mapped file: slicing np.memmap is what makes the
        # base class slow.
        data = self.data.view(np.ndarray)
        length_type = np.dtype(np.uint64).newbyteorder("<" if self.endianess == gguf.GGUFEndian.LITTLE else ">")
        parts, indices = [raw_itype, length], []
        for _ in range(count):
            size = data[offs : offs + 8].view(length_type)
            end = offs + 8 + int(size[0])
            indices.append(len(parts) + 1)
            parts += [size, data[offs + 8 : end]]
            offs = end
        if offs > len(data):
            raise ValueError(f"string array at offset {orig_offs} runs past the end of the file")
        return offs - orig_offs, parts, indices, types


class GGUFModelFile:
    """A validated GGUF file of a supported architecture."""

    def __init__(self, path):
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise GemmaKitError(f"{self.path}: no such file")
        if not is_gguf(self.path):
            raise GemmaKitError(f"{self.path}: not a GGUF file (its first bytes are not 'GGUF')")
        try:
            reader = ArrayReader(self.path)
        except Exception as e:  # the reader fails in many ways on damaged files
            raise GemmaKitError(
                f"{self.path}: truncated or corrupt GGUF file ({type(e).__name__}: {e})"
            ) from None
        self.fields = {name: _field_value(field) for name, field in reader.fields.items()}
        self.tensors = {t.name: t for t in reader.tensors}
        end = max((int(t.data_offset) + int(t.n_bytes) for t in reader.tensors), default=0)
        size = os.path.getsize(self.path)
        if end > size:
            raise GemmaKitError(
                f"{self.path}: truncated GGUF file: tensor data needs {end} bytes, file has {size}"
            )
        self.architecture = self.fields.get("general.architecture")
        if self.architecture not in SUPPORTED_ARCHITECTURES:
            raise GemmaKitError(
                f"{self.path}: GGUF architecture {self.architecture!r} is not supported; "
                f"expected one of {', '.join(SUPPORTED_ARCHITECTURES)}"
            )

    def meta(self, key, default=None):
        full = f"{self.architecture}.{key}"
        if full in self.fields:
            return self.fields[full]
        if default is None:
            raise GemmaKitError(f"{self.path}: GGUF metadata key {full!r} is missing")
        return default

    def transformers_config(self):
        """The Hugging Face config.json this file's llama.cpp conversion came from."""
        arch = self.architecture
        layers = int(self.meta("block_count"))
        heads = int(self.meta("attention.head_count"))
        hidden = int(self.meta("embedding_length"))
        head_dim = int(self.meta("attention.key_length", hidden // heads))
        embedding = self.tensor_info("token_embd.weight")
        config = {
            "model_type": "gemma2" if arch == "gemma2" else "gemma3_text",
            "vocab_size": int(embedding.shape[1]),
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "num_key_value_heads": int(self.meta("attention.head_count_kv", heads)),
            "hidden_size": hidden,
            "intermediate_size": int(self.meta("feed_forward_length")),
            "head_dim": head_dim,
            "query_pre_attn_scalar": hidden // heads if layers == _LAYERS_27B[arch] else head_dim,
            "rms_norm_eps": float(self.meta("attention.layer_norm_rms_epsilon", 1e-6)),
            "sliding_window": int(self.meta("attention.sliding_window", 4096)),
            "attn_logit_softcapping": _optional_float(self.meta("attn_logit_softcapping", 0.0)),
            "final_logit_softcapping": _optional_float(self.meta("final_logit_softcapping", 0.0)),
        }
        if arch == "gemma3":
            factor = float(self.meta("rope.scaling.factor", 1.0))
            config["rope_scaling"] = {"factor": factor} if factor != 1.0 else None
        return config

    def tensor_info(self, name):
        if name not in self.tensors:
            raise GemmaKitError(f"{self.path}: tensor {name!r} is missing")
        return self.tensors[name]

    def tensor(self, name):
        """Dequantized float32 tensor in Hugging Face (row-major) layout."""
        info = self.tensor_info(name)
        data = _dequantize(info.data, info.tensor_type)
        expected = tuple(int(d) for d in reversed(info.shape))
        if data.shape != expected:
            data = data.reshape(expected)
        if name.endswith("norm.weight"):
            # llama.cpp's converter stores Gemma RMSNorm scales as (1 + w).
            data = data - 1.0
        return data

    def sentencepiece_proto(self):
        return tokens.sentencepiece_from_gguf(self.fields, self.path)


def _dequantize(raw, tensor_type):
    """float32 values of a tensor's raw data. gguf's dequantizer loops in Python over
    groups of 16 rows (16k loops for the 270M's embedding); quantized blocks never span
    rows, so the bytes are regrouped into rows of up to 256 blocks first: a few MB of
    temporaries a step, and the 270M's tensors in 0.6 s instead of 1.4 to 2.1 s."""
    block_size, type_size = gguf.GGML_QUANT_SIZES[tensor_type]
    if block_size > 1:
        blocks = raw.size // type_size
        raw = raw.reshape(-1, math.gcd(blocks, 256) * type_size)
    return gguf.quants.dequantize(raw, tensor_type).astype(np.float32, copy=False)


class _GGUFWeightLoader:
    """Serves GGUF tensors under Hugging Face names to keras-hub's converters."""

    def __init__(self, model_file, progress):
        self.file = model_file
        self.progress = progress
        self.done = 0
        self._last = (None, None)

    def get_tensor(self, hf_key):
        return self._tensor(_gguf_name(hf_key, self.file.path))

    def _tensor(self, name):
        # keras-hub's Gemma 3 converter reads the embedding once to find its key prefix
        # and then ports it: keeping the last tensor dequantizes that table only once.
        if self._last[0] != name:
            self._last = (name, self.file.tensor(name))
        return self._last[1]

    def port_weight(self, keras_variable, hf_weight_key, hook_fn=None):
        name = _gguf_name(hf_weight_key, self.file.path)
        value = self._tensor(name)
        if hook_fn:
            value = hook_fn(value, list(keras_variable.shape))
        if tuple(value.shape) != tuple(keras_variable.shape):
            raise GemmaKitError(
                f"{self.file.path}: tensor {name!r} has shape {tuple(value.shape)} after conversion, "
                f"expected {tuple(keras_variable.shape)}"
            )
        keras_variable.assign(value)
        self.done += 1
        if self.progress:
            self.progress(self.done, len(self.file.tensors))


def _gguf_name(hf_key, path):
    if hf_key == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf_key == "model.norm.weight":
        return "output_norm.weight"
    parts = hf_key.split(".")
    if parts[:2] == ["model", "layers"] and parts[-1] == "weight":
        gguf_part = _LAYER_TENSORS.get(".".join(parts[3:-1]))
        if gguf_part:
            return f"blk.{parts[2]}.{gguf_part}.weight"
    raise GemmaKitError(f"{path}: no GGUF tensor corresponds to {hf_key!r}")


def load_gguf_causal_lm(path, dtype=None, progress=None):
    """keras-hub GemmaCausalLM / Gemma3CausalLM with the file's weights and tokenizer."""
    import keras_hub
    from keras_hub.src.utils.preset_utils import jax_memory_cleanup
    from keras_hub.src.utils.transformers import convert_gemma, convert_gemma3

    model_file = GGUFModelFile(path)
    hf_config = model_file.transformers_config()
    proto = tokens.harden(model_file.sentencepiece_proto())
    if model_file.architecture == "gemma2":
        converter = convert_gemma
        tokenizer = keras_hub.models.GemmaTokenizer(proto=None)
        preprocessor_cls = keras_hub.models.GemmaCausalLMPreprocessor
        task_cls = keras_hub.models.GemmaCausalLM
    else:
        converter = convert_gemma3
        tokenizer = keras_hub.models.Gemma3Tokenizer(proto=None, has_vision_tokens=False)
        preprocessor_cls = keras_hub.models.Gemma3CausalLMPreprocessor
        task_cls = keras_hub.models.Gemma3CausalLM
    set_proto(tokenizer, proto)
    with placeholder_weights():  # every weight comes from the file
        backbone = converter.backbone_cls(**converter.convert_backbone_config(hf_config), dtype=dtype)
    jax_memory_cleanup(backbone)
    converter.convert_weights(backbone, _GGUFWeightLoader(model_file, progress), hf_config)
    return task_cls(backbone=backbone, preprocessor=preprocessor_cls(tokenizer=tokenizer))


def stderr_progress(done, total):
    """Progress line for long GGUF reads on a terminal (the CLI passes this as
    `progress`); redirected stderr gets none, so that logs keep only messages."""
    if not sys.stderr.isatty():
        return
    end = "\n" if done >= total else ""
    sys.stderr.write(f"\rdequantizing GGUF tensors: {done}/{total}{end}")
    sys.stderr.flush()


def _field_value(field):
    try:
        return field.contents()
    except Exception:
        return None


def _optional_float(value):
    value = float(value)
    return value if value else None
