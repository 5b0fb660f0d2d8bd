"""Tiny random transformers models saved as HF folders, shared by the parity tests."""

import json

import torch
import transformers


def gemma2_config(vocab, **overrides):
    base = dict(vocab_size=vocab, hidden_size=64, intermediate_size=96, num_hidden_layers=4,
                num_attention_heads=4, num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=16,
                sliding_window=8, final_logit_softcapping=30.0, attn_logit_softcapping=50.0,
                pad_token_id=0, eos_token_id=1, bos_token_id=2, attn_implementation="eager")
    return transformers.Gemma2Config(**{**base, **overrides})


def gemma3_config(vocab):
    return transformers.Gemma3TextConfig(
        vocab_size=vocab, hidden_size=64, intermediate_size=96, num_hidden_layers=6,
        num_attention_heads=4, num_key_value_heads=1, head_dim=32, query_pre_attn_scalar=32,
        sliding_window=8, pad_token_id=0, eos_token_id=1, bos_token_id=2, attn_implementation="eager")


CONFIGS = {
    # 2B / 9B geometry: the query is scaled by 1/sqrt(head_dim).
    "gemma2_2b_geometry": (transformers.Gemma2ForCausalLM, gemma2_config),
    # 27B geometry: query_pre_attn_scalar = hidden / heads != head_dim.
    "gemma2_27b_geometry": (transformers.Gemma2ForCausalLM,
                            lambda vocab: gemma2_config(vocab, hidden_size=96, head_dim=16, query_pre_attn_scalar=24)),
    "gemma3": (transformers.Gemma3ForCausalLM, gemma3_config),
}


def save_model(name, folder, tokenizer_model, vocab, scale=0.15):
    """A seeded random model of that geometry, saved with `tokenizer_model` into `folder`.

    Weights are drawn larger than HF's init (norm weights 2x `scale`), so logits span a
    few units and any slip shows.
    """
    model_cls, make_config = CONFIGS[name]
    torch.manual_seed(0)
    model = model_cls(make_config(vocab)).eval()
    with torch.no_grad():
        for param_name, param in model.named_parameters():
            param.normal_(0.0, 2 * scale if "norm" in param_name else scale)
    model.save_pretrained(folder)
    (folder / "tokenizer.model").write_bytes(tokenizer_model)
    return model


def save_shield_model(name, folder, tokenizer_model):
    """A tiny model over the shield test tokenizer, with the HF tokenizer config the
    ShieldGemma checkpoints ship (BOS added), so `AutoTokenizer` reads it as they do."""
    # Smaller weights than the logits tests: P(Yes) should land well inside (0, 1).
    model = save_model(name, folder, tokenizer_model, vocab=1024, scale=0.08)
    (folder / "tokenizer_config.json").write_text(json.dumps({"add_bos_token": True}))
    return model
