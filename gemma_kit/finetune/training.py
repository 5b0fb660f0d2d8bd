"""`finetune`: supervised tuning with `model.fit`, resumable from its last checkpoint.

A checkpoint holds the trainable weights, the optimizer's state and the position in the
run (epoch, batch); with the data order a function of (seed, epoch)
(`SupervisedBatches`), a resumed run sees exactly the batches the interrupted one had
left and ends with the same weights. Keras' `BackupAndRestore` restarts the epoch
instead, and writes every weight of the model, not only the trainable ones.

Training runs on `LossPositions`, a view of the causal LM that sends only the positions
carrying loss through the output layer: the same loss and gradients as the full
forward pass, without projecting prompt and padding positions onto the whole vocabulary
(on the 270M that layer costs more per token than all the decoder blocks together).
"""

import json
import os

import keras
import numpy as np

from gemma_kit import runtime
from gemma_kit.errors import GemmaKitError
from gemma_kit.files import atomic_file

_STATE = "checkpoint.safetensors"


def compile_for_tuning(causal_lm, learning_rate=1e-4, weight_decay=0.0):
    """Adam(W) and the next-token loss averaged over the tokens that carry loss (the
    sample weights), with accuracy on the same tokens."""
    optimizer = (keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay) if weight_decay
                 else keras.optimizers.Adam(learning_rate))
    causal_lm.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight"),
        weighted_metrics=_metrics(),
    )


def finetune(causal_lm, train, validation=None, epochs=1, checkpoint_dir=None, checkpoint_every=None,
             callbacks=(), verbose="auto"):
    """`model.fit` over `train` (a `SupervisedBatches`), resuming from `checkpoint_dir`
    when it holds a checkpoint. The model must be compiled (`compile_for_tuning`): its
    optimizer and loss train it, through its `LossPositions` view (which `callbacks`
    see as their model); the loss must average over the weighted tokens (as
    `compile_for_tuning`'s does), since the view has fewer unweighted slots per row.
    Checkpoints are written every `checkpoint_every` batches and at each epoch's end.
    Returns {metric: [value per epoch]} for the epochs run by this call."""
    if causal_lm.optimizer is None:
        raise GemmaKitError("compile the model first (gemma_kit.finetune.compile_for_tuning)")
    runtime.forget_compiled(causal_lm)
    view = training_view(causal_lm)
    callbacks = list(callbacks)
    epoch, batch = 0, 0
    if checkpoint_dir is not None:
        checkpoint = Checkpoint(checkpoint_dir, train, checkpoint_every)
        epoch, batch = checkpoint.restore(view)
        callbacks.append(checkpoint)
    # One width for every epoch of the run, resumed or not: one compiled step.
    data = LossTokens(train, train.loss_width(range(epochs)))
    if validation is not None:
        validation = LossTokens(validation, validation.loss_width([0]))
    history = {}
    while epoch < epochs:
        train.epoch, train.skip = epoch, batch
        # A resumed epoch runs alone (its batch count differs); then the rest in one fit.
        last = epoch + 1 if batch else epochs
        # shuffle=False: Keras would reorder the batches with its own, unsaved, randomness.
        result = view.fit(data, validation_data=validation, initial_epoch=epoch, epochs=last, shuffle=False,
                          callbacks=[_EpochOrder(train, batch), *callbacks], verbose=verbose)
        for key, values in result.history.items():
            history.setdefault(key, []).extend(values)
        epoch, batch = last, 0
        if view.stop_training:
            break
    train.skip = 0
    return history


def _metrics():
    return [keras.metrics.SparseCategoricalAccuracy()]


def training_view(causal_lm):
    """`causal_lm`'s `LossPositions` view, compiled with its optimizer and loss."""
    view = LossPositions(causal_lm)
    view.compile(optimizer=causal_lm.optimizer, loss=causal_lm.loss, weighted_metrics=_metrics())
    return view


class LossPositions(keras.Model):
    """A causal LM's training view: its logits at the given positions only.

    Takes the causal LM's inputs plus "positions" [batch, K] and gives [batch, K, vocab]:
    the causal LM's own backbone and output layer (soft cap, quantized table and all),
    with the hidden states gathered before the output layer. Its variables are the
    causal LM's."""

    def __init__(self, causal_lm, **kwargs):
        super().__init__(**kwargs)
        self.backbone = causal_lm.backbone

    def call(self, inputs):
        hidden = self.backbone({k: v for k, v in inputs.items() if k != "positions"})
        positions = keras.ops.expand_dims(inputs["positions"], -1)
        return self.backbone.token_embedding(keras.ops.take_along_axis(hidden, positions, axis=1), reverse=True)


class LossTokens(keras.utils.PyDataset):
    """`SupervisedBatches` for `LossPositions`: each row's targets and weights gathered
    at its `width` first loss-carrying positions (`loss_width` holds them all), the rest
    of the row's slots pointing at position 0 with weight 0."""

    def __init__(self, batches, width):
        super().__init__()
        self.batches, self.width = batches, width

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, index):
        x, targets, weights = self.batches[index]
        positions, kept = np.zeros((len(weights), self.width), "int32"), np.zeros((len(weights), self.width), "float32")
        for row, carried in enumerate(weights):
            where = np.flatnonzero(carried)
            positions[row, : len(where)], kept[row, : len(where)] = where, carried[where]
        return {**x, "positions": positions}, np.take_along_axis(targets, positions, 1), kept


class _EpochOrder(keras.callbacks.Callback):
    """Tells the batches which epoch is running (their order depends on it)."""

    def __init__(self, batches, skip):
        super().__init__()
        self.batches, self.first_skip = batches, skip

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.epoch = epoch
        self.batches.skip, self.first_skip = self.first_skip, 0


class Checkpoint(keras.callbacks.Callback):
    """Trainable weights, optimizer state and (epoch, next batch) in one safetensors
    file, replaced atomically."""

    def __init__(self, folder, batches, every=None):
        super().__init__()
        self.folder, self.batches, self.every = os.fspath(folder), batches, every
        self.path = os.path.join(self.folder, _STATE)
        self._epoch, self._offset = 0, 0

    def restore(self, model):
        """(epoch, batch) to continue from; (0, 0) without a checkpoint."""
        from safetensors import safe_open

        if not os.path.exists(self.path):
            return 0, 0
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        with safe_open(self.path, framework="numpy") as f:
            position = json.loads(f.metadata()["position"])
            for kind, variables in (("weight", model.trainable_variables), ("optimizer", model.optimizer.variables)):
                for i, variable in enumerate(variables):
                    key = f"{kind}/{i}"
                    if key not in f.keys():
                        raise GemmaKitError(f"{self.path}: no {key} ({variable.path}); the checkpoint is from "
                                            "another model or training setup")
                    value = f.get_tensor(key)
                    if tuple(value.shape) != tuple(variable.shape):
                        raise GemmaKitError(f"{self.path}: {key} ({variable.path}) has shape {value.shape}, "
                                            f"expected {tuple(variable.shape)}")
                    variable.assign(value)
        return position["epoch"], position["batch"]

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._offset = epoch, self.batches.skip  # set by _EpochOrder, which runs first

    def on_train_batch_end(self, batch, logs=None):
        if self.every and (self._offset + batch + 1) % self.every == 0:
            self._save(self._epoch, self._offset + batch + 1)

    def on_epoch_end(self, epoch, logs=None):
        self._save(epoch + 1, 0)

    def _save(self, epoch, batch):
        from safetensors.numpy import save_file

        model = self.model
        tensors = {f"weight/{i}": _array(v) for i, v in enumerate(model.trainable_variables)}
        tensors.update({f"optimizer/{i}": _array(v) for i, v in enumerate(model.optimizer.variables)})
        with atomic_file(self.path) as staging:
            save_file(tensors, staging, metadata={"position": json.dumps({"epoch": epoch, "batch": batch})})


def _array(variable):
    """numpy copy of a variable; bfloat16 (which safetensors' numpy API lacks) as float32,
    exact, and cast back on `assign`."""
    value = keras.ops.convert_to_numpy(variable)
    return np.array(value, dtype=np.float32 if str(value.dtype) == "bfloat16" else value.dtype, order="C")
