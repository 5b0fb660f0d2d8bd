"""Data- and model-parallel Gemma through `keras.distribution` (JAX).

keras-hub's `GemmaBackbone.get_layout_map` shards the key / value kernels
[kv_heads, hidden, head_dim] on the KV-heads axis, so a model axis larger than (or not
dividing) the number of KV heads fails: Gemma 2 2B has 4 KV heads, and an 8-way model
axis raises an indivisible-sharding error. `model_parallel` keeps keras-hub's plan and
fits each weight's layout to its shape when the weight is created: a mesh axis that
does not divide its dimension moves to another dimension of that weight that it
divides (for K / V, head_dim), or the weight is replicated along it.

    mesh = keras.distribution.DeviceMesh((1, 8), ("batch", "model"), keras.distribution.list_devices())
    keras.distribution.set_distribution(model_parallel(mesh))
    lm = gemma_kit.load_model(...)          # weights created sharded
    ... fit / generate as usual; batches are split over "batch"

Multi-host: call `keras.distribution.initialize()` (which runs `jax.distributed`) on
every host first; `list_devices()` then spans all hosts.
"""

import keras

from gemma_kit.errors import GemmaKitError


def model_parallel(mesh, model_axis="model", batch_axis="batch"):
    """A `keras.distribution.ModelParallel` for Gemma 2 / Gemma 3 backbones on `mesh`."""
    import keras_hub

    for axis in (model_axis, batch_axis):
        if axis not in mesh.axis_names:
            raise GemmaKitError(f"the device mesh has axes {list(mesh.axis_names)}, not {axis!r}")
    layout_map = keras_hub.models.GemmaBackbone.get_layout_map(mesh, model_axis, batch_axis)
    return _FittedModelParallel(layout_map=layout_map, batch_dim_name=batch_axis)


def data_parallel():
    """Every weight replicated, batches split over all devices."""
    return keras.distribution.DataParallel(devices=keras.distribution.list_devices())


def fit_axes(axes, shape, mesh):
    """`axes` (a mesh axis name or None per dimension) adjusted so that every named
    axis divides its dimension: moved to the largest free dimension it divides, or
    dropped."""
    sizes = dict(zip(mesh.axis_names, mesh.shape))
    axes = list(axes)
    for i, axis in enumerate(axes):
        if axis is None or shape[i] % sizes[axis] == 0:
            continue
        axes[i] = None
        free = [j for j in range(len(shape)) if axes[j] is None and j != i and shape[j] % sizes[axis] == 0]
        if free:
            axes[max(free, key=lambda j: shape[j])] = axis
    return tuple(axes)


class _FittedModelParallel(keras.distribution.ModelParallel):
    def get_variable_layout(self, variable):
        layout = super().get_variable_layout(variable)
        axes = fit_axes(layout.axes, tuple(variable.shape), self.device_mesh)
        if axes == tuple(layout.axes):
            return layout
        return keras.distribution.TensorLayout(axes, self.device_mesh)
