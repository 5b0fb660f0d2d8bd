"""`export_gguf`: a Keras Gemma 2 / Gemma 3 causal LM (a fine-tune: LoRA adapters merged)
as a GGUF file that llama.cpp, and so Ollama, runs: float16, Q8_0 or float32 matrices,
float32 norms, with the tokenizer and the chat template inside.

The tensor names and layouts are llama.cpp's converter's for Gemma (see
`gguf_model`, which reads them back): projections as [out, in] rows, from each
EinsumDense's equation; RMSNorm scales stored as (1 + w).
"""

import os

import gguf
import numpy as np

from gemma_kit.errors import GemmaKitError
from gemma_kit.files import atomic_file
from gemma_kit.models.gguf_model import _LAYER_TENSORS, _LAYERS_27B, SUPPORTED_ARCHITECTURES
from gemma_kit.models.info import check_gemma2_or_3
from gemma_kit.models.layout import as_matrix, matrix_form
from gemma_kit.models.tokens import STRUCTURAL_TOKENS, proto_bytes

Q = gguf.GGMLQuantizationType
GGUF_QUANTIZATION = {"f16": Q.F16, "q8_0": Q.Q8_0, "f32": Q.F32}
_FILE_TYPE = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
              "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}
# The kit's Gemma turn format (`gemma_kit.chat.encode_chat`) as a Jinja template, the
# form llama.cpp and Ollama apply: a system message goes before the first user
# message, "assistant" is Gemma's "model" role.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% set system = namespace(text='') %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    "{% set system.text = system.text + ('\n\n' if system.text else '') + message['content'] %}"
    "{% else %}{% set role = 'model' if message['role'] in ('model', 'assistant') else 'user' %}"
    "{% set content = message['content'] %}"
    "{% if role == 'user' and system.text %}{% set content = system.text + '\n\n' + content %}"
    "{% set system.text = '' %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\n' + content + '<end_of_turn>\n' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)
_SP_TO_GGUF_TYPE = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6}  # SentencePiece and llama.cpp agree
_BLOCK_LAYERS = {
    "pre_attention_norm": "attn_norm", "post_attention_norm": "post_attention_norm",
    "pre_ffw_norm": "ffn_norm", "post_ffw_norm": "post_ffw_norm",
    "attention.query_dense": "attn_q", "attention.key_dense": "attn_k", "attention.value_dense": "attn_v",
    "attention.output_dense": "attn_output", "attention.query_norm": "attn_q_norm",
    "attention.key_norm": "attn_k_norm",
    "gating_ffw": "ffn_gate", "gating_ffw_2": "ffn_up", "ffw_linear": "ffn_down",
}
assert set(_BLOCK_LAYERS.values()) == set(_LAYER_TENSORS.values())  # the reader's names


def check_gguf_quantization(quantize):
    if quantize not in GGUF_QUANTIZATION:
        raise GemmaKitError(f"GGUF quantization {quantize!r} is not one of {', '.join(GGUF_QUANTIZATION)}")


def export_gguf(causal_lm, path, quantize="f16", name=None, context_length=None):
    """Write `path` (atomically); return it. `quantize`: f16, q8_0 or f32 for the
    matrices (a matrix whose rows are not a multiple of Q8_0's 32-value block stays
    f16, as llama.cpp's converter does)."""
    import keras_hub

    from gemma_kit.finetune.lora import quantized_modes

    check_gguf_quantization(quantize)
    check_gemma2_or_3(causal_lm, " as GGUF")
    gemma3 = isinstance(causal_lm, keras_hub.models.Gemma3CausalLM)
    backbone = causal_lm.backbone
    quantized = sorted(quantized_modes(causal_lm))
    if quantized:
        raise GemmaKitError(f"the model's weights are quantized in Keras ({', '.join(quantized)}); GGUF export "
                            "reads float weights: export the float model (or its saved preset)")
    architecture = SUPPORTED_ARCHITECTURES[1 if gemma3 else 0]
    with atomic_file(path) as staging:
        writer = gguf.GGUFWriter(staging, architecture)
        _write_metadata(writer, backbone, architecture, quantize, name, context_length)
        _write_tokenizer(writer, causal_lm.preprocessor.tokenizer)
        for tensor_name, value in _tensors(backbone):
            _add_tensor(writer, tensor_name, value, quantize)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return os.fspath(path)


def _write_metadata(writer, backbone, architecture, quantize, name, context_length):
    gemma3 = architecture == "gemma3"
    writer.add_name(name or f"{architecture} fine-tuned with gemma-kit")
    writer.add_file_type(_FILE_TYPE[quantize])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_context_length(context_length or (32768 if gemma3 else 8192))
    writer.add_embedding_length(backbone.hidden_dim)
    writer.add_block_count(backbone.num_layers)
    writer.add_feed_forward_length(backbone.transformer_layers[0].gating_ffw.kernel.shape[-1])
    writer.add_head_count(backbone.num_query_heads)
    writer.add_head_count_kv(backbone.num_key_value_heads)
    writer.add_key_length(backbone.head_dim)
    writer.add_value_length(backbone.head_dim)
    writer.add_layer_norm_rms_eps(backbone.layer_norm_epsilon)
    writer.add_sliding_window(backbone.sliding_window_size)
    query_scale_27b = backbone.num_layers == _LAYERS_27B[architecture]
    if query_scale_27b == backbone.query_head_dim_normalize:
        raise GemmaKitError(f"llama.cpp chooses Gemma's query scale from the layer count ({backbone.num_layers} "
                            f"layers), which disagrees with this model's query_head_dim_normalize="
                            f"{backbone.query_head_dim_normalize}; it would not run it as Keras does")
    if gemma3:
        writer.add_rope_freq_base(1_000_000.0)
        if backbone.global_rope_scaling_factor != 1.0:
            writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
            writer.add_rope_scaling_factor(backbone.global_rope_scaling_factor)
    else:
        writer.add_attn_logit_softcapping(backbone.attention_logit_soft_cap)
        writer.add_final_logit_softcapping(backbone.final_logit_soft_cap)


def _write_tokenizer(writer, tokenizer):
    from sentencepiece import sentencepiece_model_pb2 as sp_pb2

    proto = sp_pb2.ModelProto()
    proto.ParseFromString(proto_bytes(tokenizer))
    user_defined = sp_pb2.ModelProto.SentencePiece.USER_DEFINED
    # The inverse of `tokens.sentencepiece_from_gguf`: llama.cpp matches user-defined
    # pieces against raw text, with spaces, not U+2581.
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list([p.piece.replace("\u2581", " ") if p.type == user_defined else p.piece
                           for p in proto.pieces])
    writer.add_token_scores([p.score for p in proto.pieces])
    writer.add_token_types([_SP_TO_GGUF_TYPE.get(p.type, 1) for p in proto.pieces])
    ids = {p.piece: i for i, p in enumerate(proto.pieces) if p.piece in STRUCTURAL_TOKENS}
    writer.add_bos_token_id(proto.trainer_spec.bos_id)
    writer.add_eos_token_id(proto.trainer_spec.eos_id)
    writer.add_unk_token_id(proto.trainer_spec.unk_id)
    writer.add_pad_token_id(max(proto.trainer_spec.pad_id, 0))
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_add_space_prefix(proto.normalizer_spec.add_dummy_prefix)
    if "<end_of_turn>" in ids:
        writer.add_eot_token_id(ids["<end_of_turn>"])
    writer.add_chat_template(CHAT_TEMPLATE)


def _tensors(backbone):
    """(GGUF name, float32 array in llama.cpp's layout) for every weight."""
    yield "token_embd.weight", _numpy(backbone.token_embedding.embeddings)
    for i, block in enumerate(backbone.transformer_layers):
        for attribute, gguf_name in _BLOCK_LAYERS.items():
            layer = _attribute(block, attribute)
            if layer is not None:
                yield f"blk.{i}.{gguf_name}.weight", _layer_tensor(layer)
    yield "output_norm.weight", _layer_tensor(backbone.layer_norm)


def _attribute(block, dotted):
    for part in dotted.split("."):
        block = getattr(block, part, None)
    return block


def _layer_tensor(layer):
    import keras

    if isinstance(layer, keras.layers.EinsumDense):
        order, n_free = matrix_form(layer.equation)
        rows = int(np.prod([layer.kernel.shape[i] for i in order[:n_free]]))
        return as_matrix(_numpy(layer.kernel), order, rows)  # `kernel` has the LoRA update merged
    # RMSNorm: llama.cpp's converter stores Gemma's (1 + w).
    return _numpy(layer.scale) + 1.0


def _numpy(value):
    import keras

    return keras.ops.convert_to_numpy(keras.ops.cast(value, "float32"))


def _add_tensor(writer, name, value, quantize):
    qtype = GGUF_QUANTIZATION[quantize] if value.ndim == 2 else Q.F32
    if qtype == Q.Q8_0 and value.shape[-1] % gguf.GGML_QUANT_SIZES[Q.Q8_0][0]:
        qtype = Q.F16
    if qtype == Q.F32:
        writer.add_tensor(name, value)
    elif qtype == Q.F16:
        writer.add_tensor(name, value.astype(np.float16))
    else:
        writer.add_tensor(name, gguf.quants.quantize(value, qtype), raw_dtype=qtype)
