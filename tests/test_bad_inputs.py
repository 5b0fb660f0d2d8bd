"""Bad input gets one clear `gemma-kit: error:` line naming the problem, exit code 2,
before any work: each command here is refused before it loads a model (loading is
replaced by a failure), and nothing in the working folder changes.

The commands run in this process (`gemma_kit.cli.main`), as `gemma-kit` would run
them; text that is not UTF-8 reaches `main` as Python hands such bytes to a program,
as surrogate escapes."""

import json
import math
import os

import pytest
from conftest import FIXTURES

from gemma_kit import cli
from gemma_kit.errors import GemmaKitError

TINY = str(FIXTURES / "tiny_gemma2_f32.gguf")
SAE = str(FIXTURES / "sae_gemma_scope.npz")
NOT_UTF8 = b"caf\xe9".decode("utf-8", "surrogateescape")

# Files the cases name, written into the working folder by `inputs`.
FILES = {
    "train.jsonl": '{"prompt": "hi", "response": "hello"}\n',
    "labels.jsonl": '{"prompt": "hi", "labels": {"dangerous": 0}}\n{"prompt": "bomb", "labels": ["dangerous"]}\n',
    "no_positives.jsonl": '{"prompt": "hi", "labels": {"dangerous": 0}}\n{"prompt": "yo", "labels": {"dangerous": 0}}\n',
    "latin1_labels.jsonl": b'{"prompt": "caf\xe9", "labels": ["hate"]}\n',
    "texts.txt": "a text\n",
    "empty.txt": "",
    "broken.jsonl": '{"prompt": "hi", \n',
    "system_only.jsonl": '{"messages": [{"role": "system", "content": "be brief"}, '
                         '{"role": "model", "content": "ok"}]}\n',
    "latin1.txt": b"caf\xe9\n",
    "latin1.jsonl": b'{"prompt": "caf\xe9", "response": "ok"}\n',
    "not_json.json": "thresholds: 0.5\n",
    "list.json": "[0.5]\n",
    "high.json": json.dumps({"format": "gemma-kit-thresholds", "thresholds": {
        "dangerous": 2.0, "harassment": 0.5, "hate": 0.5, "sexual": 0.5}}),
    "partial.json": json.dumps({"format": "gemma-kit-thresholds", "thresholds": {"dangerous": 0.5}}),
}
GEN = ["generate", "--model", TINY, "hello"]
SHIELD = ["shield", "hello", "--model", TINY]
DASH = ["scope", "dashboard", "--model", TINY, "--sae", SAE, "--site", "1.res", "--texts", "texts.txt"]
TUNE = ["finetune", "--model", TINY, "--data", "train.jsonl", "--out", "run"]
EXPORT = ["export", "--model", TINY]
GUARD = ["export-guard", "--model", TINY]

# (arguments, what the error line must say)
CASES = {
    # generation and chat
    "max new tokens 0": (GEN + ["--max-new-tokens", "0"], "--max-new-tokens must be >= 1, found 0"),
    "max new tokens negative": (GEN + ["--max-new-tokens", "-3"], "--max-new-tokens must be >= 1"),
    "temperature nan": (GEN + ["--sampler", "top_k", "--temperature", "nan"], "temperature must be a finite"),
    "temperature inf": (GEN + ["--sampler", "top_p", "--temperature", "inf"], "temperature must be a finite"),
    "temperature 0": (GEN + ["--sampler", "random", "--temperature", "0"], "temperature must be a finite"),
    "top-p above 1": (GEN + ["--sampler", "top_p", "--top-p", "1.5"], "0 < top_p <= 1, found 50, 1.5"),
    "top-p nan": (GEN + ["--sampler", "top_p", "--top-p", "nan"], "0 < top_p <= 1"),
    "top-k 0": (GEN + ["--sampler", "top_k", "--top-k", "0"], "top_k >= 1"),
    "prompt not UTF-8": (["generate", "--model", TINY, NOT_UTF8], "argument prompt: not valid UTF-8"),
    "model path not UTF-8": (["generate", "--model", NOT_UTF8 + ".gguf", "x"], "argument model: not valid UTF-8"),
    "chat max new tokens 0": (["chat", "--model", TINY, "--max-new-tokens", "0"], "--max-new-tokens must be >= 1"),
    "chat temperature nan": (["chat", "--model", TINY, "--sampler", "top_k", "--temperature", "nan"],
                             "temperature must be a finite"),
    # ShieldGemma
    "threshold above 1": (SHIELD + ["--threshold", "1.5"], "threshold for dangerous must be a number in [0, 1]"),
    "threshold nan": (SHIELD + ["--threshold", "nan"], "must be a number in [0, 1], found nan"),
    "threshold negative": (SHIELD + ["--threshold", "-0.1"], "must be a number in [0, 1], found -0.1"),
    "thresholds file missing": (SHIELD + ["--thresholds", "nope.json"], "nope.json: thresholds file not found"),
    "thresholds file not JSON": (SHIELD + ["--thresholds", "not_json.json"], "not_json.json: not valid JSON"),
    "thresholds file a list": (SHIELD + ["--thresholds", "list.json"], "list.json: expected a 'gemma-kit-thresholds'"),
    "thresholds file value 2": (SHIELD + ["--thresholds", "high.json"], "high.json: dangerous must be a number in"),
    "thresholds file lacks a policy": (SHIELD + ["--thresholds", "partial.json"], "no threshold for policy 'harassment'"),
    "shield max length 0": (SHIELD + ["--max-length", "0"], "--max-length must be >= 1, found 0"),
    "shield text not UTF-8": (["shield", NOT_UTF8, "--model", TINY], "argument text: not valid UTF-8"),
    "shield response not UTF-8": (SHIELD + ["--response", NOT_UTF8], "argument response: not valid UTF-8"),
    "eval max length 0": (["shield", "eval", "labels.jsonl", "--model", TINY, "--max-length", "0"],
                          "--max-length must be >= 1"),
    "calibrate precision above 1": (["shield", "calibrate", "labels.jsonl", "--model", TINY, "-o", "t.json",
                                     "--target-precision", "1.5"], "--target-precision must be in (0, 1]"),
    "calibrate precision 0": (["shield", "calibrate", "labels.jsonl", "--model", TINY, "-o", "t.json",
                               "--target-precision", "0"], "--target-precision must be in (0, 1], found 0.0"),
    "calibrate with no violating texts": (["shield", "calibrate", "no_positives.jsonl", "--model", TINY, "-o",
                                           "t.json"], "policy 'dangerous' has 0 violating and 2 safe texts"),
    "calibrate data not UTF-8": (["shield", "calibrate", "latin1_labels.jsonl", "--model", TINY, "-o", "t.json"],
                                 "latin1_labels.jsonl: not UTF-8 text"),
    "calibrate data missing": (["shield", "calibrate", "nope.jsonl", "--model", TINY, "-o", "t.json"],
                               "nope.jsonl: file not found"),
    "calibrate output a folder": (["shield", "calibrate", "labels.jsonl", "--model", TINY, "-o", "."],
                                  ".: is a folder; name the file to write"),
    # Gemma Scope dashboards
    "features not integers": (DASH + ["--features", "1,x", "-o", "d"], "--features must be comma-separated integers"),
    "feature negative": (DASH + ["--features=-1", "-o", "d"], "--features [-1] are not latents of the SAE"),
    "feature past the width": (DASH + ["--features", "3,999999", "-o", "d"], "--features [999999] are not latents"),
    "texts missing": (DASH[:-1] + ["nope.txt", "--features", "1", "-o", "d"], "nope.txt: file not found"),
    "texts empty": (DASH[:-1] + ["empty.txt", "--features", "1", "-o", "d"], "empty.txt: no texts"),
    "texts not UTF-8": (DASH[:-1] + ["latin1.txt", "--features", "1", "-o", "d"], "latin1.txt: not UTF-8 text"),
    "dashboard top-k 0": (DASH + ["--features", "1", "--top-k", "0", "-o", "d"], "--top-k must be >= 1, found 0"),
    "SAE missing": (["scope", "dashboard", "--model", TINY, "--sae", "nope.npz", "--site", "1.res", "--texts",
                     "texts.txt", "--features", "1", "-o", "d"], "nope.npz: SAE file not found"),
    "dashboard into the current folder": (DASH + ["--features", "1", "-o", "."], "refusing to write output into"),
    # fine-tuning
    "sequence length 0": (TUNE + ["--sequence-length", "0"], "sequence length must be an integer >= 1, found 0"),
    "sequence length negative": (TUNE + ["--sequence-length", "-1"], "sequence length must be an integer >= 1"),
    "epochs 0": (TUNE + ["--epochs", "0"], "epochs must be an integer >= 1, found 0"),
    "batch size 0": (TUNE + ["--batch-size", "0"], "batch size must be an integer >= 1, found 0"),
    "LoRA rank negative": (TUNE + ["--lora-rank", "-1"], "LoRA rank must be 0 (tune every weight) or a positive"),
    "QLoRA without LoRA": (TUNE + ["--lora-rank", "0", "--quantize", "int8"], "a quantized base can only be tuned"),
    "learning rate nan": (TUNE + ["--learning-rate", "nan"], "learning rate must be a finite number > 0, found nan"),
    "learning rate 0": (TUNE + ["--learning-rate", "0"], "learning rate must be a finite number > 0, found 0.0"),
    "learning rate negative": (TUNE + ["--learning-rate=-1e-4"], "learning rate must be a finite number > 0"),
    "checkpoint every 0": (TUNE + ["--checkpoint-every", "0"], "checkpoint every must be an integer >= 1"),
    "LoRA alpha nan": (TUNE + ["--lora-alpha", "nan"], "LoRA alpha must be a finite number > 0, found nan"),
    "LoRA targets unknown": (TUNE + ["--targets", "query,keys"], "LoRA targets ['keys'] are not among"),
    "data missing": (["finetune", "--model", TINY, "--data", "nope.jsonl", "--out", "run"], "nope.jsonl: file not found"),
    "data not JSON": (["finetune", "--model", TINY, "--data", "broken.jsonl", "--out", "run"],
                      "broken.jsonl:1: not JSON"),
    "data not UTF-8": (["finetune", "--model", TINY, "--data", "latin1.jsonl", "--out", "run"],
                       "latin1.jsonl: not UTF-8 text"),
    "data empty": (["finetune", "--model", TINY, "--data", "empty.txt", "--out", "run"], "empty.txt: no examples"),
    "data system turn without a user turn": (["finetune", "--model", TINY, "--data", "system_only.jsonl", "--out",
                                              "run"], "a system message must be followed by a user message"),
    "eval data missing": (TUNE + ["--eval", "nope.jsonl"], "nope.jsonl: file not found"),
    "finetune into the current folder": (["finetune", "--model", TINY, "--data", "train.jsonl", "--out", "."],
                                         "refusing to write output into"),
    # export
    "export unknown extension": (EXPORT + ["-o", "model.xyz"], "model.xyz: unknown export format 'xyz'"),
    "prefill not integers": (EXPORT + ["--prefill", "32,abc", "-o", "m.tflite"], "--prefill must be comma-separated"),
    "prefill 0": (EXPORT + ["--prefill", "0", "-o", "m.tflite"], "prefill lengths [0] must be between 1 and"),
    "prefill past the KV cache": (EXPORT + ["--prefill", "2048", "--kv-len", "1024", "-o", "m.tflite"],
                                  "prefill lengths [2048] must be between 1 and the KV cache length 1024"),
    "KV cache 0": (EXPORT + ["--kv-len", "0", "-o", "m.tflite"], "must be between 1 and the KV cache length 0"),
    "GGUF with a LiteRT quantization": (EXPORT + ["--quantize", "int8", "-o", "m.gguf"],
                                        "GGUF quantization 'int8' is not one of"),
    "LiteRT with a GGUF quantization": (EXPORT + ["--quantize", "q8_0", "-o", "m.tflite"],
                                        "quantization 'q8_0' is not one of"),
    "export onto a folder": (EXPORT + ["--format", "litertlm", "-o", "."], ".: is a folder; name the file to write"),
    "guard policy unknown": (GUARD + ["--policies", "dangerous,nope", "-o", "g"], "nope"),
    "guard no policies": (GUARD + ["--policies", "", "-o", "g"], "no policies given"),
    "guard prompt length 0": (GUARD + ["--prompt-length", "0", "-o", "g"], "lengths['prompt'] must be a positive"),
    "guard into the current folder": (GUARD + ["-o", "."], "refusing to write output into"),
}


@pytest.fixture
def inputs(tmp_path, monkeypatch):
    """The working folder, holding `FILES`; loading a model fails the test."""
    for name, content in FILES.items():
        (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())

    def load(*_, **__):
        raise AssertionError("the model was loaded before the bad input was reported")

    monkeypatch.setattr(cli, "_load", load)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("case", CASES)
def test_cli_reports_bad_input_before_work(case, inputs, capsys):
    argv, message = CASES[case]
    before = snapshot(inputs)
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("gemma-kit: error: "), err
    assert message in lines[0], lines[0]
    assert snapshot(inputs) == before and not out


# The library's entry points, with the same bad inputs where they apply.
def _api_cases():
    from gemma_kit.chat import turns
    from gemma_kit.files import check_output_folder
    from gemma_kit.finetune.recipe import check_options
    from gemma_kit.sampling import Sampling
    from gemma_kit.shield import thresholds

    system = {"role": "system", "content": "be brief"}
    return {
        "chat: no messages": (lambda: turns([]), "a conversation needs a user message"),
        "chat: system only": (lambda: turns([system]), "a system message must be followed by a user message"),
        "chat: system then model": (lambda: turns([system, {"role": "model", "content": "hi"}]),
                                    "a system message must be followed by a user message"),
        "chat: model only": (lambda: turns([{"role": "model", "content": "hi"}]), "needs a user message"),
        "chat: message not a dict": (lambda: turns(["hi"]), "message 0: expected {'role': ..., 'content': ...}"),
        "chat: unknown role": (lambda: turns([{"role": "bot", "content": "hi"}]), "role 'bot' is not one of"),
        "chat: content not text": (lambda: turns([{"role": "user", "content": 3}]), "content must be a string"),
        "sampling: temperature nan": (lambda: Sampling("top_k", math.nan), "temperature must be a finite"),
        "thresholds: nan": (lambda: thresholds.resolve(math.nan, ["hate"]), "threshold for hate must be a number"),
        "finetune: sequence length 0": (lambda: check_options(8, None, 1, 4, sequence_length=0),
                                        "sequence length must be an integer >= 1"),
        "output: home folder": (lambda: check_output_folder(os.path.expanduser("~"), "guard", overwrite=True),
                                "refusing to write output into the home or root folder"),
    }


@pytest.mark.parametrize("case", list(_api_cases()))
def test_api_reports_bad_input(case):
    call, message = _api_cases()[case]
    with pytest.raises(GemmaKitError) as raised:
        call()
    assert message in str(raised.value)


@pytest.fixture(scope="module")
def tiny_lm():
    import gemma_kit

    return gemma_kit.load_model(TINY)


def _model_cases():
    import gemma_kit
    from gemma_kit.generation import generate_ids, stream

    return {
        "logits: id past the vocabulary": (lambda lm: gemma_kit.logits(lm, [[2, 10**6]]), "token ids [1000000] are "
                                           "outside the model's vocabulary [0, 512)"),
        "logits: negative id": (lambda lm: gemma_kit.logits(lm, [[2, -1]]), "token ids [-1] are outside"),
        "logits: float ids": (lambda lm: gemma_kit.logits(lm, [[2.5, 3.0]]), "token ids must be integers"),
        "generate: id past the vocabulary": (lambda lm: generate_ids(lm, [[2, 600]], 4), "token ids [600] are outside"),
        "generate: empty prompt": (lambda lm: generate_ids(lm, [[2], []], 4), "each prompt needs at least one token"),
        "generate: no prompts": (lambda lm: generate_ids(lm, [], 4), "each prompt needs at least one token"),
        "stream: id past the vocabulary": (lambda lm: next(stream(lm, [2, 999], 4)), "token ids [999] are outside"),
        "stream: max new tokens 0": (lambda lm: next(stream(lm, [2, 40], 0)), "max_new_tokens >= 1"),
        "generate: past the context": (lambda lm: generate_ids(lm, [[2, 40]], 10**12), "a prompt of 2 tokens and "
                                       "max_new_tokens 1000000000000 exceed the model's context of 8192 tokens"),
        "generate: prompt longer than the context": (lambda lm: generate_ids(lm, [[2] * 9000], 1),
                                                     "a prompt of 9000 tokens"),
        "stream: past the context": (lambda lm: next(stream(lm, [2, 40], 8191)), "exceed the model's context"),
    }


@pytest.mark.parametrize("case", list(_model_cases()))
def test_model_calls_report_bad_input(case, tiny_lm):
    call, message = _model_cases()[case]
    with pytest.raises(GemmaKitError) as raised:
        call(tiny_lm)
    assert message in str(raised.value)


def test_a_refused_adapter_leaves_the_model_as_it_was(tmp_path):
    """A rank-8 file whose tensors are rank 4 (or whose names do not fit) is refused
    before LoRA layers are added, so the right adapter still loads afterwards."""
    import gemma_kit
    from safetensors import safe_open
    from safetensors.numpy import save_file

    from gemma_kit.finetune.lora import adapted_layers, enable_lora, load_adapter, save_adapter

    tuned = gemma_kit.load_model(TINY)
    enable_lora(tuned, rank=4)
    good = save_adapter(tuned, tmp_path / "good.safetensors")
    with safe_open(good, "numpy") as f:
        metadata, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    wrong_rank = {**metadata, "config": json.dumps({**json.loads(metadata["config"]), "rank": 8})}
    save_file(tensors, str(tmp_path / "rank.safetensors"), metadata=wrong_rank)
    renamed = {k.replace("decoder_block_1", "decoder_block_7"): v for k, v in tensors.items()}
    save_file(renamed, str(tmp_path / "names.safetensors"), metadata=metadata)
    (tmp_path / "truncated.safetensors").write_bytes(open(good, "rb").read()[:-100])
    model = gemma_kit.load_model(TINY)
    for bad, message in (("rank", "has LoRA shapes (2, 64, 4) and (4, 16); the model expects rank 8"),
                         ("names", "missing ['decoder_block_1/"), ("truncated", "not a safetensors file")):
        with pytest.raises(GemmaKitError) as raised:
            load_adapter(model, tmp_path / f"{bad}.safetensors")
        assert message in str(raised.value), raised.value
        assert not adapted_layers(model)
    load_adapter(model, good)
    ids = [[2, 40, 50, 60]]
    assert (gemma_kit.logits(model, ids) == gemma_kit.logits(tuned, ids)).all()


def _edit_json(name, change):
    def edit(folder):
        path = folder / name
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))
    return edit


def _sharded(weight_file):
    def edit(folder):
        (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"x": weight_file}}))
    return edit


# A copy of the tiny Hugging Face folder with one thing wrong: (edit, what the error says).
FOLDER_CASES = {
    "config not an object": (lambda f: (f / "config.json").write_text("[1, 2]"), "expected a JSON object, found list"),
    "config not JSON": (lambda f: (f / "config.json").write_text("{model_type: gemma2"), "config.json: unreadable JSON"),
    "config lacks a key": (_edit_json("config.json", lambda c: c.pop("num_hidden_layers")),
                           "num_hidden_layers must be a positive integer, found None"),
    "config key of the wrong type": (_edit_json("config.json", lambda c: c.update(head_dim="16")),
                                     "head_dim must be a positive integer, found '16'"),
    "layer count the weights lack": (_edit_json("config.json", lambda c: c.update(num_hidden_layers=6)),
                                     "num_hidden_layers is 6, but the weights hold layers 0 to 3 (4 layers)"),
    "unsupported model type": (_edit_json("config.json", lambda c: c.update(model_type="llama")),
                               "model_type 'llama' is not supported"),
    "truncated weights": (lambda f: (f / "model.safetensors").write_bytes((f / "model.safetensors").read_bytes()[:5000]),
                          "the file is truncated or damaged"),
    "garbage weights": (lambda f: (f / "model.safetensors").write_bytes(os.urandom(4096)), "not a safetensors file"),
    "index points outside the folder": (_sharded("../outside/model.safetensors"),
                                        "shards must be file names in the model folder"),
    "index names a missing shard": (_sharded("model-00002-of-00002.safetensors"), "weights file not found"),
    "index not JSON": (lambda f: (f / "model.safetensors.index.json").write_text("{"), "index.json: unreadable JSON"),
    "corrupt tokenizer.model": (lambda f: (f / "tokenizer.model").write_bytes(b"\x00garbage" * 20),
                                "tokenizer.model: not a SentencePiece model"),
    "preset config without a class": (lambda f: (f / "config.json").write_text('{"config": {}}'),
                                      "expected a keras-hub preset config with 'class_name'"),
}


@pytest.mark.parametrize("case", FOLDER_CASES)
def test_damaged_model_folders_are_named(case, tiny_shield_folder, tmp_path, capsys):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_shield_folder, folder)
    edit, message = FOLDER_CASES[case]
    edit(folder)
    assert cli.main(["info", "--model", str(folder)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"gemma-kit: error: {folder}") and message in lines[0], lines


def test_a_gguf_tensor_of_the_wrong_shape_is_named(tmp_path, capsys):
    """blk.0.ffn_up.weight's dimensions swapped in the file's tensor table (same size)."""
    import struct

    data = bytearray((FIXTURES / "tiny_gemma2_f32.gguf").read_bytes())
    name = b"blk.0.ffn_up.weight"
    at = data.index(struct.pack("<Q", len(name)) + name) + 8 + len(name)
    dims = struct.unpack_from("<IQQ", data, at)
    assert dims == (2, 64, 128)
    struct.pack_into("<QQ", data, at + 4, 128, 64)
    (tmp_path / "shape.gguf").write_bytes(bytes(data))
    assert cli.main(["info", "--model", str(tmp_path / "shape.gguf")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"gemma-kit: error: {tmp_path / 'shape.gguf'}: tensor 'blk.0.ffn_up.weight' has shape "
                     "(128, 64) after conversion, expected (64, 128)"]


def test_chat_input_that_is_not_utf8_is_named(monkeypatch, capsys):
    import io
    import sys

    class Stdin:
        buffer = io.BytesIO(b"caf\xe9\n")

        def isatty(self):
            return False

    monkeypatch.setattr(sys, "stdin", Stdin())
    assert cli.main(["chat", "--model", TINY, "--max-new-tokens", "2"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "gemma-kit: error: standard input: a line is not valid UTF-8 text"
    assert "Traceback" not in err
