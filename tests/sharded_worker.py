"""Run in a fresh process with 8 simulated CPU devices (tests/test_finetune_sharded.py):
logits, a short LoRA fit and greedy generation of the tiny Gemma 2 under each layout in
turn, each saved as FOLDER/LAYOUT.npz for the test to compare across layouts.

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python tests/sharded_worker.py FOLDER LAYOUT...
"""

import os
import sys

os.environ["KERAS_BACKEND"] = "jax"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import gemma_kit  # noqa: E402
from gemma_kit.finetune import compile_for_tuning, enable_lora, finetune, supervised_batches  # noqa: E402
from gemma_kit.finetune.distribution import data_parallel, model_parallel  # noqa: E402
from gemma_kit.generation import generate_ids  # noqa: E402

TINY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "tiny_gemma2_f32.gguf")
WORDS = ["cat", "dog", "bird", "fish", "cow", "pig", "hen", "fox"]


def distribution(layout):
    devices = keras.distribution.list_devices()
    assert len(devices) == 8, devices
    if layout == "single":
        return None
    if layout == "data":
        return data_parallel()
    batch, model = map(int, layout.split("x"))  # e.g. "1x8": batch axis 1, model axis 8
    mesh = keras.distribution.DeviceMesh((batch, model), ("batch", "model"), devices)
    if os.environ.get("GEMMA_KIT_KERAS_HUB_LAYOUT"):
        import keras_hub

        return keras.distribution.ModelParallel(
            layout_map=keras_hub.models.GemmaBackbone.get_layout_map(mesh), batch_dim_name="batch")
    return model_parallel(mesh)


def main(folder, layouts):
    for layout in layouts:
        # Each layout starts as a fresh process would: no distribution, names or seeds
        # left from the one before.
        keras.backend.clear_session()
        keras.distribution.set_distribution(distribution(layout))
        run(layout, os.path.join(folder, f"{layout}.npz"))


def run(layout, out):
    keras.utils.set_random_seed(0)
    lm = gemma_kit.load_model(TINY)
    specs = {v.path: str(v.value.sharding.spec) for v in lm.backbone.weights
             if hasattr(v.value.sharding, "spec")}
    ids = np.array([[2, 40, 50, 60, 70, 80, 90, 100]] * 8)
    before = gemma_kit.logits(lm, ids)
    enable_lora(lm, rank=4, targets=("query", "key", "value", "output"))
    compile_for_tuning(lm, learning_rate=1e-2)
    examples = [[{"role": "user", "content": f"say {w}"}, {"role": "model", "content": f"{w} {w}"}] for w in WORDS]
    history = finetune(lm, supervised_batches(lm.preprocessor.tokenizer, examples, batch_size=8), epochs=3, verbose=0)
    after = gemma_kit.logits(lm, ids)
    tokens = generate_ids(lm, [[2, 40, 50, 60]] * 8, 8)
    np.savez(out, before=before, after=after, loss=np.asarray(history["loss"]), tokens=np.asarray(tokens),
             key_spec=np.asarray(specs.get("decoder_block_0/attention/key/kernel", "")))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
