"""Fine-tuning with `model.fit`: supervised LoRA / QLoRA tuning from JSONL, resumable
runs, adapters, merged presets, agile policy classifiers and sharded training.

    lm = gemma_kit.load_model("default")
    batches = supervised_batches(lm.preprocessor.tokenizer, "train.jsonl", batch_size=4)
    enable_lora(lm, rank=8, targets=("query", "value"))
    compile_for_tuning(lm, learning_rate=2e-4)
    finetune(lm, batches, epochs=3, checkpoint_dir="run/")
    save_adapter(lm, "adapter.safetensors"); merge(lm, "tuned_preset/")

Names are imported on first use, so `KERAS_BACKEND` can still be chosen after import.
"""

from gemma_kit import lazy

_EXPORTS = {
    "read_jsonl": "gemma_kit.finetune.data",
    "render": "gemma_kit.finetune.data",
    "supervised_batches": "gemma_kit.finetune.data",
    "SupervisedBatches": "gemma_kit.finetune.data",
    "enable_lora": "gemma_kit.finetune.lora",
    "load_adapter": "gemma_kit.finetune.lora",
    "merge": "gemma_kit.finetune.lora",
    "quantize": "gemma_kit.finetune.lora",
    "save_adapter": "gemma_kit.finetune.lora",
    "save_preset": "gemma_kit.finetune.lora",
    "compile_for_tuning": "gemma_kit.finetune.training",
    "finetune": "gemma_kit.finetune.training",
    "tune": "gemma_kit.finetune.recipe",
    "train_policy_classifier": "gemma_kit.finetune.classifier",
    "data_parallel": "gemma_kit.finetune.distribution",
    "model_parallel": "gemma_kit.finetune.distribution",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy.exports("gemma_kit.finetune", _EXPORTS)
