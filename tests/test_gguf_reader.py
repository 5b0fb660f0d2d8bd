"""The kit's GGUF metadata reader against gguf's own (llama.cpp's Python package)."""

import gguf
import numpy as np
import pytest

from gemma_kit.models.gguf_model import ArrayReader, GGUFModelFile
from gemma_kit.models.loading import default_model_path

from conftest import FIXTURES

FILES = {"tiny_f32": FIXTURES / "tiny_gemma2_f32.gguf", "tiny_quant": FIXTURES / "tiny_gemma2_quant.gguf",
         "default": None}


@pytest.mark.parametrize("name", FILES)
def test_fields_and_tensors_equal_gguf_reader(name):
    path = FILES[name] or default_model_path()
    fast, reference = ArrayReader(path), gguf.GGUFReader(path)
    assert list(fast.fields) == list(reference.fields)
    for key, field in reference.fields.items():
        assert (fast.fields[key].types, fast.fields[key].offset) == (field.types, field.offset), key
        assert fast.fields[key].contents() == field.contents(), key
    assert len(reference.fields["tokenizer.ggml.tokens"].contents()) >= 512  # the arrays it reads its own way
    assert [(t.name, t.tensor_type, t.shape.tolist(), t.data_offset) for t in fast.tensors] == [
        (t.name, t.tensor_type, t.shape.tolist(), t.data_offset) for t in reference.tensors]
    assert fast.data_offset == reference.data_offset


@pytest.mark.parametrize("name", ["tiny_quant", "default"])
def test_dequantized_tensors_equal_gguf_dequantize(name):
    """The kit regroups quantized rows before dequantizing (`gguf_model._dequantize`):
    every value stays what gguf's own dequantizer gives for the tensor as stored."""
    model_file = GGUFModelFile(FILES[name] or default_model_path())
    for tensor_name, info in model_file.tensors.items():
        expected = gguf.quants.dequantize(info.data, info.tensor_type).astype(np.float32)
        if tensor_name.endswith("norm.weight"):
            expected = expected - 1.0  # llama.cpp stores Gemma's norm scales as 1 + w
        found = model_file.tensor(tensor_name)
        assert found.dtype == np.float32 and np.array_equal(found.reshape(expected.shape), expected), tensor_name
