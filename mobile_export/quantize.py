"""Float16 and int4 weights for an exported float32 `.tflite`, written by
`ai-edge-quantizer` (the quantizer LiteRT-LM's own recipes come from).

    fp16           float16 weights, computed in float32
    int4           int4 weights in blocks of 32 along the input, activations quantized
                   per token at run time (integer matmuls)
    int4-block128  the same with blocks of 128

Every FULLY_CONNECTED and EMBEDDING_LOOKUP weight is quantized; the embedding table is
one tensor for the lookup and the output layer, so it is stored once (a table quantized
two ways would be copied once per signature by the quantizer). Dynamic int8 is not made
here but by `int8_graph` from int8 weights, without converting a float32 model first;
the two agree (tests/test_export.py). Measured quality and speed on the default model
are in docs/benchmarks.md. Weight-only int8 (float matmuls) is more accurate than
dynamic int8 on Gemma, whose activations have outlier dimensions, but is not offered:
LiteRT-LM's CPU path dequantizes its weights at every step and decodes at a quarter of
float32's speed.
"""

import os

from gemma_kit.errors import GemmaKitError
from gemma_kit.files import atomic_file

# Every weight format export offers ("none" is float32; int8 comes from `int8_graph`).
QUANTIZATION = ("none", "fp16", "int8", "int4", "int4-block128")
# name: (bits, granularity, how the matmuls run)
RECIPES = {
    "fp16": (16, "CHANNELWISE", "float"),
    "int4": (4, "BLOCKWISE_32", "dynamic"),
    "int4-block128": (4, "BLOCKWISE_128", "dynamic"),
}


def recipe(name):
    from ai_edge_quantizer import algorithm_manager, qtyping, recipe_manager

    bits, granularity, mode = RECIPES[name]
    manager = recipe_manager.RecipeManager()
    for op in ("FULLY_CONNECTED", "EMBEDDING_LOOKUP"):
        options = dict(regex=".*", operation_name=getattr(qtyping.TFLOperationName, op), num_bits=bits,
                       granularity=getattr(qtyping.QuantGranularity, granularity))
        if mode == "dynamic":
            manager.add_dynamic_config(**options)
        else:
            manager.add_weight_only_config(**options, algorithm_key=algorithm_manager.AlgorithmName.FLOAT_CASTING)
    return manager.get_quantization_recipe()


def quantize_weights(float_path, path, name):
    """Write `float_path`'s model with `name`'s weights to `path` (atomically)."""
    from ai_edge_quantizer import quantizer

    model = quantizer.Quantizer(os.fspath(float_path))
    model.load_quantization_recipe(recipe(name))
    try:
        result = model.quantize()
    except Exception as e:  # noqa: BLE001 - the quantizer raises many types
        raise GemmaKitError(f"{float_path}: {name} quantization failed: {e}") from None
    with atomic_file(path) as staging:
        result.export_model(staging, overwrite=True)
    return os.fspath(path)
