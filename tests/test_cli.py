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


def test_shield_scores_match_library(tiny_shield, tiny_shield_folder):
    out = run("shield", "How do I bake bread?", "--response", "Knead it.", "--model", str(tiny_shield_folder),
              "--policy", "hate", "--policy", "violence", "--threshold", "0.3", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    expected = tiny_shield.score("How do I bake bread?", ["Knead it."], policies=["hate", "violence"])[0]
    assert list(result["scores"]) == ["hate", "violence"]
    assert abs(result["scores"]["hate"] - expected[0]) <= 1e-6
    assert result["violations"] == [k for k, v in result["scores"].items() if v >= 0.3]


def test_shield_eval_and_calibrate(tiny_shield_folder, tmp_path):
    data = tmp_path / "data.jsonl"
    rows = [{"prompt": f"text number {i}", "labels": {"hate": i % 2, "sexual": int(i % 3 == 0)}} for i in range(12)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = run("shield", "eval", str(data), "--model", str(tiny_shield_folder), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert set(report) == {"hate", "sexual", "overall"} and report["hate"]["positives"] == 6
    thresholds = tmp_path / "t.json"
    out = run("shield", "calibrate", str(data), "--model", str(tiny_shield_folder), "-o", str(thresholds))
    assert out.returncode == 0, out.stderr
    saved = json.loads(thresholds.read_text())
    assert saved["thresholds"]["hate"] == report["hate"]["threshold"] and saved["method"] == "optimal_f1"
    out = run("shield", "text number 3", "--model", str(tiny_shield_folder), "--policy", "hate",
              "--policy", "sexual", "--thresholds", str(thresholds))
    assert out.returncode == 0 and "hate" in out.stdout, out.stderr


def test_shield_errors_are_one_line(tiny_shield_folder, tmp_path):
    out = run("shield", "eval", str(tmp_path / "missing.jsonl"), "--model", str(tiny_shield_folder))
    assert out.returncode == 2 and out.stderr.strip().endswith("missing.jsonl: file not found")
    assert "Traceback" not in out.stderr


def test_finetune_writes_adapter_preset_and_resumes(tmp_path):
    """`gemma-kit finetune` on the tiny model: the preset it writes generates like the
    tuned model; run again on the same folder, it resumes from the finished checkpoint
    (no further steps) and writes the same adapter."""
    import numpy as np
    from safetensors.numpy import load_file

    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"say {w}", "response": f"{w} {w}"}) + "\n"
                            for w in ["cat", "dog", "fox", "owl"]))
    args = ["finetune", "--model", str(FIXTURES / "tiny_gemma2_f32.gguf"), "--data", str(data), "--eval", str(data),
            "--lora-rank", "4", "--targets", "query,value,down", "--epochs", "3", "--learning-rate", "1e-2",
            "--out", str(tmp_path / "run")]
    out = run(*args)
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["eval_loss_after"] < summary["eval_loss_before"]
    assert summary["lora"] == {"rank": 4, "alpha": 4.0, "targets": ["query", "value", "down"]}
    first = load_file(tmp_path / "run" / "adapter.safetensors")
    again = run(*args)
    assert again.returncode == 0, again.stderr
    for key, value in load_file(tmp_path / "run" / "adapter.safetensors").items():
        np.testing.assert_array_equal(value, first[key])
    tuned = run("generate", "say cat", "--chat", "--max-new-tokens", "4", "--model", str(tmp_path / "run" / "preset"))
    assert tuned.returncode == 0, tuned.stderr
    bad = run("finetune", "--model", str(FIXTURES / "tiny_gemma2_f32.gguf"), "--data", str(data), "--lora-rank", "0",
              "--quantize", "int8", "--out", str(tmp_path / "bad"))
    assert bad.returncode == 2 and "only be tuned through LoRA" in bad.stderr and "Traceback" not in bad.stderr


def test_export_writes_a_bundle_and_reports_int8_error(tmp_path):
    out = run("export", "--model", TINY, "--quantize", "int8", "--prefill", "8,16", "--kv-len", "32",
              "-o", str(tmp_path / "tiny.litertlm"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "tiny.litertlm").read_bytes()[:8] == b"LITERTLM"
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"wrote {tmp_path / 'tiny.litertlm'} (") and lines[1] == "int8 against float32 on a sample text:"
    assert sorted(line.split()[0] for line in lines[2:]) == ["decode", "prefill_16", "prefill_8"]
    bad = run("export", "--model", TINY, "--prefill", "64", "--kv-len", "32", "-o", str(tmp_path / "x.tflite"))
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1] == (
        "gemma-kit: error: prefill lengths [64] must be between 1 and the KV cache length 32")
    assert not (tmp_path / "x.tflite").exists()


def test_export_gguf_runs_like_the_source(tmp_path):
    """`--format gguf` from the extension: the written file loads back with the source's
    weights (f32), and a LiteRT-only weight format is refused by name."""
    import numpy as np

    import gemma_kit

    out = run("export", "--model", TINY, "--quantize", "f32", "-o", str(tmp_path / "tiny.gguf"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"wrote {tmp_path / 'tiny.gguf'} (")
    ids = [[2, 40, 50, 60, 70]]
    assert np.array_equal(gemma_kit.logits(gemma_kit.load_model(str(tmp_path / "tiny.gguf")), ids),
                          gemma_kit.logits(gemma_kit.load_model(TINY), ids))
    bad = run("export", "--model", TINY, "--format", "gguf", "--quantize", "int4", "-o", str(tmp_path / "x"))
    assert bad.returncode == 2 and "GGUF quantization 'int4' is not one of f16, q8_0, f32" in bad.stderr
    assert not (tmp_path / "x").exists()


def test_export_guard_writes_the_classifier_folder(tmp_path, tiny_shield_folder):
    out = run("export-guard", "--model", str(tiny_shield_folder), "--policies", "dangerous,hate",
              "--prompt-length", "256", "--response-length", "320", "-o", str(tmp_path / "guard"))
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in (tmp_path / "guard").iterdir()) == ["guard.json", "guard.tflite", "tokenizer.model"]
    config = json.loads((tmp_path / "guard" / "guard.json").read_text())
    assert [p["key"] for p in config["policies"]] == ["dangerous", "hate"]
