"""Supervised tuning on a tiny Gemma 2: data rendering, the loss mask, LoRA / QLoRA,
adapters, merging, presets and resumable runs, on every backend."""

import json

import keras
import numpy as np
import pytest
from conftest import FIXTURES

import gemma_kit
from gemma_kit.chat import control_id, encode_chat, encode_text
from gemma_kit.errors import GemmaKitError
from gemma_kit.finetune import (compile_for_tuning, enable_lora, finetune, load_adapter, merge, quantize, read_jsonl,
                                render, save_adapter, supervised_batches)

pytestmark = pytest.mark.backends
TINY = str(FIXTURES / "tiny_gemma2_f32.gguf")
WORDS = ["cat", "dog", "bird", "fish", "cow", "pig", "hen", "fox", "owl", "bee"]
EXAMPLES = [[{"role": "user", "content": f"say {w}"}, {"role": "model", "content": f"{w} {w} {w}"}] for w in WORDS]
IDS = np.array([[2, 40, 50, 60, 70, 80, 90], [2, 41, 51, 61, 71, 81, 91]])


def tiny():
    keras.utils.set_random_seed(0)  # before the tokenizer is built (see the keras-hub notes)
    return gemma_kit.load_model(TINY)


@pytest.fixture(scope="module")
def lm():
    return tiny()


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def test_render_is_the_inference_chat_format(lm):
    tokenizer = lm.preprocessor.tokenizer
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
                {"role": "model", "content": "hello there"}, {"role": "user", "content": "more"},
                {"role": "model", "content": "bye"}]
    ids, mask = render(tokenizer, messages)
    end, newline = control_id(tokenizer, "<end_of_turn>"), encode_text(tokenizer, "\n")
    first = encode_chat(tokenizer, messages[:2])  # what generation is given
    assert ids[: len(first)] == first and not any(mask[: len(first)])
    answer = [*encode_text(tokenizer, "hello there"), end]
    assert ids[len(first) : len(first) + len(answer)] == answer and all(mask[len(first) : len(first) + len(answer)])
    trained = [t for t, m in zip(ids, mask) if m]
    assert trained == [*answer, *encode_text(tokenizer, "bye"), end]
    assert ids[-len(newline) :] == newline and len(ids) == len(mask)


def test_loss_is_the_mean_over_response_tokens_and_ignores_the_rest(lm):
    """The loss equals the cross-entropy averaged over the masked tokens, computed here
    from the logits; changing the targets at prompt or padding positions leaves it
    unchanged, changing one response target changes it."""
    compile_for_tuning(lm)
    batches = supervised_batches(lm.preprocessor.tokenizer, EXAMPLES[:4], batch_size=4, shuffle=False)
    x, y, weights = batches[0]
    # keras.Model's evaluate, as finetune uses keras.Model's fit (keras-hub's maps the
    # string preprocessor over its inputs).
    loss = keras.Model.evaluate(lm, x, y, sample_weight=weights, verbose=0, return_dict=True)["loss"]
    logits = gemma_kit.logits(lm, x["token_ids"], x["padding_mask"]).astype(np.float64)
    log_p = logits - logits.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    picked = -np.take_along_axis(log_p, y[..., None], -1)[..., 0]
    assert loss == pytest.approx((picked * weights).sum() / weights.sum(), rel=1e-4)
    assert 0 < weights.sum() < (x["padding_mask"]).sum()  # some tokens, not all, carry loss

    def loss_with(targets):
        return keras.Model.evaluate(lm, x, targets, sample_weight=weights, verbose=0, return_dict=True)["loss"]

    changed = y.copy()
    changed[weights == 0] = 7  # every prompt and padding target
    assert loss_with(changed) == loss
    changed = y.copy()
    row, col = np.argwhere(weights > 0)[0]
    changed[row, col] = (changed[row, col] + 1) % 300
    assert abs(loss_with(changed) - loss) > 1e-3


def test_a_short_last_batch_is_filled_with_rows_that_carry_no_loss(lm):
    """Every batch has `batch_size` rows (one compiled step); the rows that fill the last
    one are padding with no loss weight, so its loss is that of its real row alone."""
    compile_for_tuning(lm)
    batches = supervised_batches(lm.preprocessor.tokenizer, EXAMPLES[:5], batch_size=4, shuffle=False)
    x, y, weights = batches[len(batches) - 1]
    assert len(batches) == 2 and y.shape[0] == 4 and weights[0].sum() > 0
    assert not weights[1:].any() and not x["padding_mask"][1:].any()

    def loss(rows):
        return keras.Model.evaluate(lm, {k: v[rows] for k, v in x.items()}, y[rows], sample_weight=weights[rows],
                                    verbose=0, return_dict=True)["loss"]

    assert loss(slice(None)) == pytest.approx(loss(slice(0, 1)), rel=1e-6)


def test_finetune_trains_as_keras_fit_of_the_whole_model():
    """`finetune` projects only the loss-carrying positions; Keras' own `fit` of the
    causal LM (every position through the output layer) on the same batches gives the
    same losses and the same adapters. Packed rows of 24 put loss tokens anywhere (the
    first position of some rows included), at most 16 a row, so the view gathers
    fewer positions than the rows hold; the last batch holds padding."""

    def lora_model():
        model = tiny()
        keras.utils.set_random_seed(1)
        enable_lora(model, rank=4)
        compile_for_tuning(model, learning_rate=1e-2)
        return model, supervised_batches(model.preprocessor.tokenizer, EXAMPLES, batch_size=3, packing=True,
                                         sequence_length=24, shuffle=False)

    ours, batches = lora_model()
    assert batches.loss_width([0]) < batches.length and any((batches[i][2][:, 0] > 0).any() for i in range(len(batches)))
    history = finetune(ours, batches, epochs=2, verbose=0)
    theirs, batches = lora_model()
    reference = keras.Model.fit(theirs, batches, epochs=2, shuffle=False, verbose=0).history
    assert sorted(history) == sorted(reference)
    for key in reference:
        np.testing.assert_allclose(history[key], reference[key], rtol=2e-5)
    for a, b in zip(ours.trainable_variables, theirs.trainable_variables):
        np.testing.assert_allclose(numpy(a), numpy(b), atol=2e-5)
    assert history["loss"][1] < history["loss"][0]


def test_packed_batches_keep_every_token_and_mask():
    import gemma_kit.finetune.data as data

    rows = [(np.arange(1, n + 1), np.arange(n) % 2) for n in (5, 9, 3, 7)]
    batches = data.SupervisedBatches(rows, batch_size=2, sequence_length=7, pad_id=0, packing=True, seed=3)
    ids, mask = batches._arrays(0)
    stream = np.concatenate([rows[i][0] for i in batches._order(0)])
    assert ids.shape == (3, 8) and (ids.reshape(-1)[: len(stream)] == stream).all()
    assert (ids.reshape(-1)[len(stream):] == -1).all()
    x, y, w = batches[0]
    assert (y == np.maximum(ids[:2, 1:], 0)).all() and (w == mask[:2, 1:]).all()
    assert (x["token_ids"][~x["padding_mask"]] == 0).all()
    padded = data.SupervisedBatches(rows, batch_size=2, sequence_length=5, pad_id=0)
    assert padded.truncated == 2  # the 9- and 7-token rows are cut to 6 (5 inputs, 5 targets)


def test_jsonl_reading_and_errors(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"prompt": "p", "response": "r"}) + "\n\n" + json.dumps({"messages": EXAMPLES[0]}) + "\n")
    assert read_jsonl(path) == [[{"role": "user", "content": "p"}, {"role": "model", "content": "r"}], EXAMPLES[0]]
    for line, message in [("{", "d.jsonl:1: not JSON"), ('{"text": "x"}', "expected the key 'messages'"),
                          ('{"messages": [{"role": "user", "content": "x"}]}', "no model turn to learn from"),
                          ('{"messages": "hi"}', "'messages' must be a list"),
                          ('{"messages": [{"role": "robot", "content": "x"}]}', "d.jsonl:1: message 0: role 'robot'")]:
        path.write_text(line + "\n")
        with pytest.raises(GemmaKitError, match=message):
            read_jsonl(path)
    with pytest.raises(GemmaKitError, match="nothing.jsonl: file not found"):
        read_jsonl(tmp_path / "nothing.jsonl")


def random_adapters(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in gemma_kit.finetune.lora.adapted_layers(model):
        layer.lora_kernel_b.assign(rng.normal(0, 0.05, layer.lora_kernel_b.shape).astype("float32"))


def test_lora_adapter_round_trip_and_merge(tmp_path):
    model = tiny()
    base = gemma_kit.logits(model, IDS)
    layers = enable_lora(model, rank=4, alpha=8, targets=("query", "key", "value", "output", "gate", "up", "down"))
    assert len(layers) == 7 * model.backbone.num_layers
    assert {v.path.rsplit("/", 1)[-1] for v in model.trainable_variables} == {"lora_kernel_a", "lora_kernel_b"}
    np.testing.assert_array_equal(gemma_kit.logits(model, IDS), base)  # B starts at zero
    random_adapters(model)
    adapted = gemma_kit.logits(model, IDS)
    assert np.abs(adapted - base).max() > 0.1
    save_adapter(model, tmp_path / "adapter.safetensors")
    fresh = tiny()
    load_adapter(fresh, tmp_path / "adapter.safetensors")
    np.testing.assert_array_equal(gemma_kit.logits(fresh, IDS), adapted)
    merged = merge(model, tmp_path / "preset")
    assert not gemma_kit.finetune.lora.adapted_layers(merged)
    assert np.abs(gemma_kit.logits(merged, IDS) - adapted).max() <= 1e-4
    reloaded = gemma_kit.load_model(str(tmp_path / "preset"))
    assert np.abs(gemma_kit.logits(reloaded, IDS) - adapted).max() <= 1e-4


def test_adapter_errors(tmp_path):
    model = tiny()
    enable_lora(model, rank=4)
    save_adapter(model, tmp_path / "r4.safetensors")
    with pytest.raises(GemmaKitError, match="LoRA is already enabled"):
        enable_lora(model, rank=2)
    other = tiny()
    enable_lora(other, rank=2)
    with pytest.raises(GemmaKitError, match="does not match the model's LoRA"):
        load_adapter(other, tmp_path / "r4.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(GemmaKitError, match="bad.safetensors: not a safetensors file"):
        load_adapter(tiny(), tmp_path / "bad.safetensors")
    with pytest.raises(GemmaKitError, match="targets \\['attn'\\]"):
        enable_lora(tiny(), rank=4, targets=("attn",))
    with pytest.raises(GemmaKitError, match="no LoRA adapters"):
        save_adapter(tiny(), tmp_path / "none.safetensors")


@pytest.mark.parametrize("mode", ["int8", "int4"])
def test_qlora_trains_only_the_adapters(mode, tmp_path):
    model = quantize(tiny(), mode)
    frozen = {v.path: numpy(v).copy() for v in model.weights}
    enable_lora(model, rank=4)
    compile_for_tuning(model, learning_rate=1e-2)
    history = finetune(model, supervised_batches(model.preprocessor.tokenizer, EXAMPLES, batch_size=5), epochs=3,
                       verbose=0)
    assert history["loss"][-1] < history["loss"][0]
    assert all(np.array_equal(numpy(v), frozen[v.path]) for v in model.weights if v.path in frozen)
    adapted = gemma_kit.logits(model, IDS)
    merged = merge(model, tmp_path / "preset")
    assert merged.backbone.transformer_layers[0].attention.query_dense.quantization_mode == mode
    # Keras re-quantizes the merged kernel: equal up to the quantization step.
    correlation = np.corrcoef(gemma_kit.logits(merged, IDS).ravel(), adapted.ravel())[0, 1]
    assert correlation > 0.99


def test_quantize_collects_garbage_once():
    """Keras runs a full collection for every float kernel it drops while quantizing
    (29 on this model); the kit's `quantize` runs one, and leaves `gc.collect` as it was."""
    import gc

    model, collect, full = tiny(), gc.collect, []

    def count(phase, info):
        if phase == "start" and info["generation"] == 2:
            full.append(1)

    gc.callbacks.append(count)
    try:
        quantize(model, "int8")
    finally:
        gc.callbacks.remove(count)
    assert model.backbone.transformer_layers[0].attention.query_dense.quantization_mode == "int8"
    assert 1 <= len(full) <= 2 and gc.collect is collect


def run(epochs=3, checkpoint_dir=None, stop_after=None):
    """Final trainable weights of a LoRA run (None when stopped after `stop_after` batches)."""
    model = tiny()
    enable_lora(model, rank=4)
    compile_for_tuning(model, learning_rate=1e-2)
    batches = supervised_batches(model.preprocessor.tokenizer, EXAMPLES, batch_size=4, seed=1)

    class Interrupt(keras.callbacks.Callback):
        seen = 0

        def on_train_batch_end(self, batch, logs=None):
            Interrupt.seen += 1
            if Interrupt.seen == stop_after:
                raise KeyboardInterrupt

    try:
        finetune(model, batches, epochs=epochs, checkpoint_dir=checkpoint_dir, checkpoint_every=1,
                 callbacks=[Interrupt()] if stop_after else [], verbose=0)
    except KeyboardInterrupt:
        return None
    return [numpy(v) for v in model.trainable_variables]


@pytest.fixture(scope="module")
def uninterrupted():
    return run()


@pytest.mark.parametrize("stop_after, position", [(3, {"epoch": 0, "batch": 2}), (5, {"epoch": 1, "batch": 1})])
def test_interrupted_run_resumes_to_the_same_weights(stop_after, position, uninterrupted, tmp_path):
    """Interrupted inside the first epoch (its last batch lost) or the second."""
    assert run(checkpoint_dir=tmp_path, stop_after=stop_after) is None
    from safetensors import safe_open

    with safe_open(tmp_path / "checkpoint.safetensors", "numpy") as f:
        assert json.loads(f.metadata()["position"]) == position
    resumed = run(checkpoint_dir=tmp_path)
    for a, b in zip(uninterrupted, resumed):
        np.testing.assert_array_equal(a, b)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no staging files left
