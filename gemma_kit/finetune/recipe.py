"""`tune`: the whole supervised recipe from files to a tuned model on disk (what
`gemma-kit finetune` runs). Running it again with the same `out` folder resumes an
interrupted run from its checkpoint.

`out` receives:
- `adapter.safetensors`: the LoRA adapters (`load_adapter`), unless fully tuned;
- `preset/`: the tuned model as a keras-hub preset (adapters merged), which
  `gemma_kit.load_model` and `keras_hub.models.CausalLM.from_preset` read;
- `checkpoint/`: the resumable training state;
- `summary.json`: settings, losses per epoch, eval loss before and after.
"""

import json
import os

import keras

from gemma_kit.errors import GemmaKitError
from gemma_kit.files import atomic_file, check_output_folder, claim_folder
from gemma_kit.finetune import lora
from gemma_kit.finetune.data import supervised_batches
from gemma_kit.finetune.training import compile_for_tuning, finetune


def check_options(lora_rank, quantize, epochs, batch_size, sequence_length=None, learning_rate=2e-4,
                  checkpoint_every=50, lora_alpha=None, targets=lora.DEFAULT_TARGETS):
    """`tune`'s options that need no model, checked (the CLI checks them before loading one)."""
    if not isinstance(lora_rank, int) or lora_rank < 0:
        raise GemmaKitError(f"LoRA rank must be 0 (tune every weight) or a positive integer, found {lora_rank!r}")
    if quantize and not lora_rank:
        raise GemmaKitError("a quantized base can only be tuned through LoRA (give a LoRA rank > 0)")
    for name, value in (("epochs", epochs), ("batch size", batch_size), ("checkpoint every", checkpoint_every),
                        ("sequence length", 1 if sequence_length is None else sequence_length)):
        if not isinstance(value, int) or value < 1:
            raise GemmaKitError(f"{name} must be an integer >= 1, found {value!r}")
    for name, value in (("learning rate", learning_rate), ("LoRA alpha", 1.0 if lora_alpha is None else lora_alpha)):
        if not 0 < value < float("inf"):  # NaN fails too
            raise GemmaKitError(f"{name} must be a finite number > 0, found {value!r}")
    lora.check_targets(targets)


def tune(causal_lm, data, out, eval_data=None, lora_rank=8, lora_alpha=None, targets=lora.DEFAULT_TARGETS,
         quantize=None, epochs=1, batch_size=4, sequence_length=None, packing=False, learning_rate=2e-4, seed=0,
         checkpoint_every=50, verbose="auto", overwrite=False):
    """Tune `causal_lm` in place on `data` (JSONL path or examples) and write `out`.
    `lora_rank=0` tunes every weight; `quantize` ("int8" / "int4") is QLoRA. An
    existing `out` that is not an earlier run's folder is refused unless `overwrite`
    (`gemma_kit.files`)."""
    check_options(lora_rank, quantize, epochs, batch_size, sequence_length, learning_rate, checkpoint_every,
                  lora_alpha, targets)
    check_output_folder(out, "finetune", overwrite)
    tokenizer = causal_lm.preprocessor.tokenizer
    train = supervised_batches(tokenizer, data, batch_size, sequence_length, packing, seed=seed)
    validation = None
    if eval_data is not None:
        validation = supervised_batches(tokenizer, eval_data, batch_size, train.length, shuffle=False)
    keras.utils.set_random_seed(seed)
    if quantize:
        lora.quantize(causal_lm, quantize)
    if lora_rank:
        lora.enable_lora(causal_lm, lora_rank, lora_alpha, targets)
    compile_for_tuning(causal_lm, learning_rate)
    claim_folder(out, "finetune", overwrite)
    before = _loss(causal_lm, validation)
    history = finetune(causal_lm, train, validation, epochs, os.path.join(out, "checkpoint"), checkpoint_every,
                       verbose=verbose)
    after = _loss(causal_lm, validation)
    if lora_rank:
        lora.save_adapter(causal_lm, os.path.join(out, "adapter.safetensors"))
    lora.save_preset(causal_lm, os.path.join(out, "preset"), overwrite)
    summary = {"examples": len(train.rows), "sequence_length": train.length, "truncated": train.truncated,
               "batch_size": batch_size, "packing": packing, "epochs": epochs, "learning_rate": learning_rate,
               "lora": lora.lora_config(causal_lm) if lora_rank else None, "quantize": quantize, "seed": seed,
               "history": history, "eval_loss_before": before, "eval_loss_after": after}
    with atomic_file(os.path.join(out, "summary.json")) as staging, open(staging, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    return summary


def _loss(causal_lm, batches):
    """Mean loss over the response tokens of `batches` (None without them)."""
    if batches is None:
        return None
    return float(keras.Model.evaluate(causal_lm, batches, verbose=0, return_dict=True)["loss"])
