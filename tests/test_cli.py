"""The `gemma-kit` command, run as a user runs it."""

import json
import subprocess
import sys

from conftest import FIXTURES

TINY = str(FIXTURES / "tiny_gemma2_f32.gguf")


def run(*args, stdin=""):
    return subprocess.run([sys.executable, "-m", "gemma_kit.cli", *args], input=stdin,
                          capture_output=True, text=True, timeout=600)


def test_info_json():
    out = run("info", "--model", TINY, "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["architecture"] == "GemmaCausalLM" and info["layers"] == 4 and info["vocabulary_size"] == 512
    assert "dequantizing GGUF tensors: 46/46" in out.stderr


def test_generate_matches_library():
    import gemma_kit

    expected = gemma_kit.generate(gemma_kit.load_model(TINY), "ab", max_new_tokens=6)
    out = run("generate", "--model", TINY, "ab", "--max-new-tokens", "6")
    assert out.returncode == 0, out.stderr
    assert out.stdout == expected + "\n"


def test_chat_streams_turns():
    """Two turns, the second after /reset: each equals the library's streamed reply."""
    import gemma_kit
    from gemma_kit.generation import decode

    lm = gemma_kit.load_model(TINY)
    tokenizer = lm.preprocessor.tokenizer

    def reply(text):
        ids = gemma_kit.encode_chat(tokenizer, [{"role": "user", "content": text}])
        return decode(tokenizer, list(gemma_kit.stream(lm, ids, 4)))

    out = run("chat", "--model", TINY, "--max-new-tokens", "4", stdin="hello\n/reset\nagain\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout == reply("hello") + "\n" + reply("again") + "\n"


def test_bad_sampling_flag_is_reported():
    out = run("generate", "--model", TINY, "x", "--sampler", "top_k", "--temperature", "0")
    assert out.returncode == 2 and "temperature must be > 0" in out.stderr
