"""The last step of the int8 export (`int8_graph`): every weight the converted graph
computes as `cast(int8 constant) * per-row scale` becomes that int8 constant itself,
with the scales as its per-channel quantization, read directly by its
FULLY_CONNECTED or EMBEDDING_LOOKUP: LiteRT's dynamic-range ("hybrid") kernels, in the
layout ai-edge-quantizer's dynamic int8 recipe writes. The CAST and MUL go. A weight
the converter folded back into a float32 constant (it folds small ones) is quantized
per row here.

The file is written with its buffers after the flatbuffer (offset and size fields)
when they pass 2 GB, a flatbuffer's limit, as TFLite's own converter does.
"""

import mmap
import os

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils

from gemma_kit.errors import GemmaKitError
from gemma_kit.files import atomic_file
from mobile_export.int8_graph import quantize_rows

_ALIGN = 64
_FLATBUFFER_LIMIT = 2**31 - 2**24  # 2 GB, less room for the tables
_OPS = schema.BuiltinOperator


def fold(raw_path, path, external=None):
    """Read the converted `raw_path`, write the folded model to `path` (atomically).
    `external`: buffers after the flatbuffer (default: when they would pass 2 GB)."""
    with open(raw_path, "rb") as f:
        # The model's buffers are views of the mapping, which lives as long as they do.
        raw = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    model = flatbuffer_utils.read_model_from_bytearray(memoryview(raw))
    quantized = {}
    for subgraph in model.subgraphs:
        _fold_subgraph(model, subgraph, quantized)
    _drop_unused_buffers(model)
    _write(model, path, external)
    return os.fspath(path)


def _fold_subgraph(model, subgraph, quantized):
    kind = [_builtin(model, op) for op in subgraph.operators]
    producer = {t: i for i, op in enumerate(subgraph.operators) for t in op.outputs}
    for i, op in enumerate(subgraph.operators):
        if kind[i] not in (_OPS.FULLY_CONNECTED, _OPS.EMBEDDING_LOOKUP):
            continue
        weight = subgraph.tensors[op.inputs[1]]
        source = producer.get(op.inputs[1])
        if source is not None and kind[source] == _OPS.MUL:
            chain = _cast_times_scale(model, subgraph, subgraph.operators[source], producer, kind)
            if chain is None:
                continue
            q_index, scale = chain
            op.inputs[1] = q_index
            _set_channel_scales(subgraph.tensors[q_index], scale)
        elif weight.type == schema.TensorType.FLOAT32 and len(weight.shape) == 2 and _is_constant(model, weight):
            if weight.buffer not in quantized:
                q, scale = quantize_rows(_data(model, weight, np.float32))
                model.buffers.append(schema.BufferT())
                model.buffers[-1].data = q.reshape(-1).view(np.uint8)
                quantized[weight.buffer] = (len(model.buffers) - 1, scale)
            weight.buffer, scale = quantized[weight.buffer]
            weight.type = schema.TensorType.INT8
            _set_channel_scales(weight, scale)
    _drop_dead_dequantizers(subgraph, kind)
    left = [i for i, op in enumerate(subgraph.operators) if _builtin(model, op) == _OPS.CAST
            and subgraph.tensors[op.inputs[0]].type == schema.TensorType.INT8
            and _is_constant(model, subgraph.tensors[op.inputs[0]])]
    if left:
        raise GemmaKitError(f"int8 export: {len(left)} int8 weights in {subgraph.name.decode()} are still cast "
                            "to float (their consumers are not FULLY_CONNECTED or EMBEDDING_LOOKUP)")


def _cast_times_scale(model, subgraph, mul, producer, kind):
    """(the int8 constant's tensor index, scales [rows]) if `mul` is cast(q) * scale."""
    for a, b in (mul.inputs, mul.inputs[::-1]):
        cast = producer.get(a)
        scale = subgraph.tensors[b]
        if cast is None or kind[cast] != _OPS.CAST or not _is_constant(model, scale):
            continue
        q_index = subgraph.operators[cast].inputs[0]
        q = subgraph.tensors[q_index]
        if q.type != schema.TensorType.INT8 or not _is_constant(model, q):
            continue
        scale = _data(model, scale, np.float32).reshape(-1)
        if scale.size != q.shape[0]:
            continue
        return q_index, scale
    return None


def _set_channel_scales(tensor, scale):
    quantization = schema.QuantizationParametersT()
    quantization.scale = np.asarray(scale, np.float32)
    quantization.zeroPoint = np.zeros(len(scale), np.int64)
    quantization.quantizedDimension = 0
    tensor.quantization = quantization


def _drop_dead_dequantizers(subgraph, kind):
    """Remove the CASTs and MULs whose outputs nothing reads any more."""
    keep = list(range(len(subgraph.operators)))
    while True:
        read = set(subgraph.outputs) | {t for i in keep for t in subgraph.operators[i].inputs}
        dead = {i for i in keep if kind[i] in (_OPS.CAST, _OPS.MUL)
                and not read.intersection(subgraph.operators[i].outputs)}
        if not dead:
            break
        keep = [i for i in keep if i not in dead]
    subgraph.operators = [subgraph.operators[i] for i in keep]


def _drop_unused_buffers(model):
    """Empty the buffers (the scales' float copies) that no operator's tensor reads."""
    used = {0}
    for subgraph in model.subgraphs:
        live = set(subgraph.inputs) | set(subgraph.outputs)
        live |= {t for op in subgraph.operators for t in (*op.inputs, *op.outputs)}
        used |= {subgraph.tensors[t].buffer for t in live if t >= 0}
    used |= {entry.buffer for entry in model.metadata or []}
    for index, buffer in enumerate(model.buffers):
        if index not in used:
            buffer.data = None


def _builtin(model, op):
    return flatbuffer_utils.get_builtin_code_from_operator_code(model.operatorCodes[op.opcodeIndex])


def _is_constant(model, tensor):
    data = model.buffers[tensor.buffer].data
    return data is not None and len(data) > 0


def _data(model, tensor, dtype):
    return np.frombuffer(model.buffers[tensor.buffer].data, dtype).reshape(tensor.shape)


def _write(model, path, external):
    payload = {i: memoryview(b.data).cast("B") for i, b in enumerate(model.buffers)
               if b.data is not None and len(b.data)}
    if external is None:
        external = sum(v.nbytes for v in payload.values()) > _FLATBUFFER_LIMIT
    with atomic_file(path) as staging, open(staging, "wb") as f:
        if not external:
            f.write(flatbuffer_utils.convert_object_to_bytearray(model))
            return
        # Placeholders keep the offset and size fields in the packed tables, to be set below.
        for index in payload:
            model.buffers[index].data, model.buffers[index].offset, model.buffers[index].size = None, 1, 1
        head = flatbuffer_utils.convert_object_to_bytearray(model)
        packed = flatbuffer_utils.Model.GetRootAs(head, 0)
        offset, layout = _round_up(len(head)), []
        for index, data in payload.items():
            flatbuffer_utils.update_packed_buffer(packed.Buffers(index), offset=offset, size=data.nbytes)
            layout.append((offset, data))
            offset = _round_up(offset + data.nbytes)
        f.write(head)
        for start, data in layout:
            f.write(bytes(start - f.tell()))
            f.write(data)


def _round_up(n):
    return -(-n // _ALIGN) * _ALIGN
