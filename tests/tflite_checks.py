"""Reading weights out of exported .tflite files, for the export tests."""

import numpy as np


def int8_weights(path, signature="decode"):
    """(int8 weight [out, in], per-channel scales) of each FULLY_CONNECTED and
    EMBEDDING_LOOKUP of a signature, in operator order (for `decode`, the table twice:
    lookup and output layer); fails on a float weight."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    subgraph = next(s for s in model.subgraphs if s.name == signature.encode())
    found = []
    for op in subgraph.operators:
        code = flatbuffer_utils.get_builtin_code_from_operator_code(model.operatorCodes[op.opcodeIndex])
        if code in (schema.BuiltinOperator.FULLY_CONNECTED, schema.BuiltinOperator.EMBEDDING_LOOKUP):
            weight = subgraph.tensors[op.inputs[1]]
            assert weight.type == schema.TensorType.INT8 and weight.quantization.quantizedDimension == 0
            q = np.frombuffer(model.buffers[weight.buffer].data, np.int8).reshape(weight.shape).astype(np.int32)
            found.append((q, np.asarray(weight.quantization.scale)))
    return found
