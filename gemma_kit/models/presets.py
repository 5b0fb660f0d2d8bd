"""keras-hub preset names of the Gemma families the kit loads."""

import difflib

from gemma_kit.errors import GemmaKitError


def gemma_preset_names():
    import keras_hub

    names = set()
    for task in (keras_hub.models.GemmaCausalLM, keras_hub.models.Gemma3CausalLM):
        names.update(task.presets)
    return sorted(names)


def check_preset_name(name):
    known = gemma_preset_names()
    if name in known:
        return
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known presets: {', '.join(known)}"
    raise GemmaKitError(
        f"{name!r} is not a file, a folder, or a keras-hub Gemma preset{hint} "
        "(Kaggle handles 'kaggle://owner/model/keras/variant' and 'hf://owner/name' ids are "
        "passed to keras-hub as they are)"
    )
