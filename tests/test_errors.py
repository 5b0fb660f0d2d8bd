"""Each kind of bad input gets an error that names the problem."""

import json
import shutil

import gguf
import numpy as np
import pytest

import gemma_kit
from gemma_kit.errors import GemmaKitError

from conftest import FIXTURES

TINY = FIXTURES / "tiny_gemma2_f32.gguf"


def test_missing_file(tmp_path):
    with pytest.raises(GemmaKitError, match=r"missing\.gguf: no such file or folder"):
        gemma_kit.load_model(tmp_path / "missing.gguf")


def test_not_gguf(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"PK\x03\x04 definitely a zip")
    with pytest.raises(GemmaKitError, match=r"model\.bin: not a GGUF file"):
        gemma_kit.load_model(path)


@pytest.mark.parametrize("keep", [0.5, 0.02])
def test_truncated_gguf(tmp_path, keep):
    data = TINY.read_bytes()
    path = tmp_path / "cut.gguf"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(GemmaKitError, match=r"cut\.gguf: truncated"):
        gemma_kit.load_model(path)


def test_unsupported_architecture(tmp_path):
    path = tmp_path / "llama.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((8, 4), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(GemmaKitError, match=r"architecture 'llama' is not supported; expected one of gemma2, gemma3"):
        gemma_kit.load_model(path)


def test_hf_folder_without_tokenizer(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gemma2"}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(GemmaKitError, match=r"tokenizer is missing \(a Hugging Face gemma2 folder needs tokenizer\.model\)"):
        gemma_kit.load_model(tmp_path)


def test_hf_folder_of_another_model(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(GemmaKitError, match="model_type 'llama' is not supported"):
        gemma_kit.load_model(tmp_path)


def test_unsupported_dtype():
    with pytest.raises(GemmaKitError, match="dtype 'int3' is not supported; expected one of float32, bfloat16, float16"):
        gemma_kit.load_model(TINY, dtype="int3")


def test_unknown_preset_suggests_close_names():
    with pytest.raises(GemmaKitError, match="did you mean gemma2_2b_en"):
        gemma_kit.load_model("gemma2_2b_eng")
    with pytest.raises(GemmaKitError, match="shieldgemma_2b_en"):
        gemma_kit.load_model("shieldgemma_2b")


def test_missing_tensor(tmp_path):
    """A GGUF whose tensor list lacks a layer weight names that tensor."""
    reader = gguf.GGUFReader(str(TINY))
    path = tmp_path / "holey.gguf"
    writer = gguf.GGUFWriter(str(path), "gemma2")
    for name, field in reader.fields.items():
        if name.startswith("gemma2.") or name.startswith("tokenizer."):
            value = field.contents()
            vtype = field.types[0] if len(field.types) == 1 else gguf.GGUFValueType.ARRAY
            sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
            writer.add_key_value(name, value, vtype, sub_type=sub)
    for t in reader.tensors:
        if t.name != "blk.1.ffn_up.weight":
            writer.add_tensor(t.name, np.array(t.data))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(GemmaKitError, match=r"holey\.gguf: tensor 'blk\.1\.ffn_up\.weight' is missing"):
        gemma_kit.load_model(path)


def test_cli_reports_errors_without_traceback(tmp_path, capsys):
    from gemma_kit.cli import main

    assert main(["info", "--model", str(tmp_path / "nope.gguf")]) == 2
    err = capsys.readouterr().err
    assert "nope.gguf: no such file or folder" in err and "Traceback" not in err


def test_keras_hub_preset_folder_roundtrip(tmp_path):
    """A keras-hub preset folder saved from a loaded model loads back with equal logits."""
    lm = gemma_kit.load_model(TINY)
    lm.save_to_preset(str(tmp_path / "preset"))
    again = gemma_kit.load_model(tmp_path / "preset")
    ids = np.arange(7, 30)[None]
    np.testing.assert_allclose(gemma_kit.logits(again, ids), gemma_kit.logits(lm, ids), atol=1e-6)
    shutil.rmtree(tmp_path / "preset" / "assets")
    with pytest.raises(GemmaKitError, match="assets/tokenizer is missing"):
        gemma_kit.load_model(tmp_path / "preset")
