"""The operators a .tflite file uses, read from its flatbuffer: what decides whether
stock LiteRT runtimes (which ship builtin ops only) can run it."""

from gemma_kit.errors import GemmaKitError


def operators(model_bytes):
    """Sorted operator names: builtin names (e.g. "FULLY_CONNECTED"), or "custom:NAME"
    for custom ops (Flex ops are custom ops named "Flex...")."""
    from tensorflow.lite.python import schema_py_generated as schema

    names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    try:
        model = schema.Model.GetRootAsModel(model_bytes, 0)
        codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    except Exception as e:  # noqa: BLE001 - any flatbuffer decoding failure
        raise GemmaKitError(f"not a TFLite flatbuffer ({e})") from None
    found = set()
    for code in codes:
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            found.add(f"custom:{code.CustomCode().decode()}")
        else:
            found.add(names.get(builtin, f"builtin:{builtin}"))
    return sorted(found)


def check_builtin_only(model_bytes, where):
    custom = [name for name in operators(model_bytes) if name.startswith("custom:")]
    if custom:
        raise GemmaKitError(f"{where}: uses operators that stock LiteRT runtimes do not have: {', '.join(custom)}")
