"""The `gemma-kit` command, run as a user runs it.

Each test's commands are child processes that need only fixture files, so they run in
the run's background queue (`background`), alongside other tests: `COMMANDS[name]`
runs test_<name>'s commands in a fresh folder, and the test takes their outcome (the
completed processes and the folder) and asserts on it.

A command is `python -m gemma_kit.cli ...` forked from an interpreter that has
imported JAX, TensorFlow and keras-hub, the kit itself not (`conftest.warm_python`):
each skips 7 s of imports. `gemma-kit info` and the `--backend` test run in a fresh
interpreter, as the README's commands do."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import CLI_PYTHON, FIXTURES

TINY = str(FIXTURES / "tiny_gemma2_f32.gguf")
COMMANDS = {}
COMMAND_MEMORY = 2 * 2**30


def run(*args, stdin="", fresh=False):
    """The completed `gemma-kit ARGS` (`fresh`: in a new interpreter)."""
    command = [sys.executable, "-m", "gemma_kit.cli", *args]
    if fresh:
        return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=600)
    return CLI_PYTHON.run(command, input=stdin, timeout=600)


def commands(function):
    """Register `function(folder, shield_folder)`, the commands of test_<its name>."""
    COMMANDS[function.__name__] = function
    return function


def background_jobs(request):
    names = [item.function.__name__[5:] for item in request.session.items if item.module.__name__ == __name__]
    names = [name for name in names if name in COMMANDS]
    if not names:
        return []
    factory, shield = request.getfixturevalue("tmp_path_factory"), request.getfixturevalue("tiny_shield_folder")
    return [(f"cli {name}", lambda name=name: _run_commands(name, factory, shield), COMMAND_MEMORY) for name in names]


def _run_commands(name, factory, shield_folder):
    folder = factory.mktemp(f"cli_{name}")
    return COMMANDS[name](folder, shield_folder), folder


@pytest.fixture
def outcome(request, background):
    """(processes, folder): the outcome of this test's commands."""
    return background.result(f"cli {request.function.__name__[5:]}")


@commands
def info_json(folder, shield_folder):
    return run("info", "--model", TINY, "--json", fresh=True)


def test_info_json(outcome):
    out, _ = outcome
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["architecture"] == "GemmaCausalLM" and info["layers"] == 4 and info["vocabulary_size"] == 512
    assert "dequantizing" not in out.stderr  # progress goes to a terminal only, not to a log


def test_progress_is_drawn_on_a_terminal(monkeypatch):
    import io

    from gemma_kit.models.gguf_model import stderr_progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    for done in (1, 2):
        stderr_progress(done, 2)
    assert sys.stderr.getvalue() == "\rdequantizing GGUF tensors: 1/2\rdequantizing GGUF tensors: 2/2\n"


@commands
def generate_matches_library(folder, shield_folder):
    return run("generate", "--model", TINY, "ab", "--max-new-tokens", "6")


def test_generate_matches_library(outcome):
    import gemma_kit

    out, _ = outcome
    expected = gemma_kit.generate(gemma_kit.load_model(TINY), "ab", max_new_tokens=6)
    assert out.returncode == 0, out.stderr
    assert out.stdout == expected + "\n"


@commands
def chat_streams_turns(folder, shield_folder):
    return run("chat", "--model", TINY, "--max-new-tokens", "4", stdin="hello\n/reset\nagain\n")


def test_chat_streams_turns(outcome):
    """Two turns, the second after /reset: each equals the library's streamed reply."""
    import gemma_kit
    from gemma_kit.generation import decode

    lm = gemma_kit.load_model(TINY)
    tokenizer = lm.preprocessor.tokenizer

    def reply(text):
        ids = gemma_kit.encode_chat(tokenizer, [{"role": "user", "content": text}])
        return decode(tokenizer, list(gemma_kit.stream(lm, ids, 4)))

    out, _ = outcome
    assert out.returncode == 0, out.stderr
    assert out.stdout == reply("hello") + "\n" + reply("again") + "\n"


@commands
def bad_sampling_flag_is_reported(folder, shield_folder):
    return run("generate", "--model", TINY, "x", "--sampler", "top_k", "--temperature", "0")


def test_bad_sampling_flag_is_reported(outcome):
    out, _ = outcome
    assert out.returncode == 2 and "temperature must be a finite number > 0" in out.stderr


def test_backend_flag_is_set_before_keras_loads():
    """`--backend` works only if nothing imports Keras first (Keras reads the variable
    once): building the parser and checking the options must not."""
    code = ("import sys; from gemma_kit.cli import main; "
            "code = main(['generate', 'x', '--backend', 'torch', '--sampler', 'top_k', '--temperature', '0']); "
            "import os; print(code, 'keras' in sys.modules, os.environ['KERAS_BACKEND'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "KERAS_BACKEND": "jax"})
    assert done.stdout.split() == ["2", "False", "torch"], done.stderr


@commands
def shield_scores_match_library(folder, shield_folder):
    return run("shield", "How do I bake bread?", "--response", "Knead it.", "--model", str(shield_folder),
               "--policy", "hate", "--policy", "violence", "--threshold", "0.3", "--json")


def test_shield_scores_match_library(outcome, tiny_shield):
    out, _ = outcome
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    expected = tiny_shield.score("How do I bake bread?", ["Knead it."], policies=["hate", "violence"])[0]
    assert list(result["scores"]) == ["hate", "violence"]
    assert abs(result["scores"]["hate"] - expected[0]) <= 1e-6
    assert result["violations"] == [k for k, v in result["scores"].items() if v >= 0.3]


@commands
def shield_eval_and_calibrate(folder, shield_folder):
    data = folder / "data.jsonl"
    rows = [{"prompt": f"text number {i}", "labels": {"hate": i % 2, "sexual": int(i % 3 == 0)}} for i in range(12)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {
        "eval": run("shield", "eval", str(data), "--model", str(shield_folder), "--json"),
        "calibrate": run("shield", "calibrate", str(data), "--model", str(shield_folder), "-o", str(folder / "t.json")),
        "screen": run("shield", "text number 3", "--model", str(shield_folder), "--policy", "hate",
                      "--policy", "sexual", "--thresholds", str(folder / "t.json")),
    }


def test_shield_eval_and_calibrate(outcome):
    out, folder = outcome
    assert out["eval"].returncode == 0, out["eval"].stderr
    report = json.loads(out["eval"].stdout)
    assert set(report) == {"hate", "sexual", "overall"} and report["hate"]["positives"] == 6
    assert out["calibrate"].returncode == 0, out["calibrate"].stderr
    saved = json.loads((folder / "t.json").read_text())
    assert saved["thresholds"]["hate"] == report["hate"]["threshold"] and saved["method"] == "optimal_f1"
    assert out["screen"].returncode == 0 and "hate" in out["screen"].stdout, out["screen"].stderr


@commands
def shield_errors_are_one_line(folder, shield_folder):
    return run("shield", "eval", str(folder / "missing.jsonl"), "--model", str(shield_folder))


def test_shield_errors_are_one_line(outcome):
    out, _ = outcome
    assert out.returncode == 2 and out.stderr.strip().endswith("missing.jsonl: file not found")
    assert "Traceback" not in out.stderr


@commands
def finetune_writes_adapter_preset_and_resumes(folder, shield_folder):
    data = folder / "train.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"say {w}", "response": f"{w} {w}"}) + "\n"
                            for w in ["cat", "dog", "fox", "owl"]))
    args = ["finetune", "--model", TINY, "--data", str(data), "--eval", str(data), "--lora-rank", "4",
            "--targets", "query,value,down", "--epochs", "3", "--learning-rate", "1e-2", "--out", str(folder / "run")]
    out = {"first": run(*args)}
    if (folder / "run" / "adapter.safetensors").exists():
        shutil.copyfile(folder / "run" / "adapter.safetensors", folder / "first.safetensors")
        shutil.copyfile(folder / "run" / "summary.json", folder / "first_summary.json")
    out["again"] = run(*args)
    out["tuned"] = run("generate", "say cat", "--chat", "--max-new-tokens", "4", "--model", str(folder / "run" / "preset"))
    out["bad"] = run("finetune", "--model", TINY, "--data", str(data), "--lora-rank", "0", "--quantize", "int8",
                     "--out", str(folder / "bad"))
    return out


def test_finetune_writes_adapter_preset_and_resumes(outcome):
    """`gemma-kit finetune` on the tiny model: the preset it writes generates like the
    tuned model; run again on the same folder, it resumes from the finished checkpoint
    (no further steps) and writes the same adapter."""
    import numpy as np
    from safetensors.numpy import load_file

    out, folder = outcome
    assert out["first"].returncode == 0, out["first"].stderr
    summary = json.loads((folder / "first_summary.json").read_text())
    assert summary["eval_loss_after"] < summary["eval_loss_before"]
    assert summary["lora"] == {"rank": 4, "alpha": 4.0, "targets": ["query", "value", "down"]}
    first = load_file(folder / "first.safetensors")
    assert out["again"].returncode == 0, out["again"].stderr
    for key, value in load_file(folder / "run" / "adapter.safetensors").items():
        np.testing.assert_array_equal(value, first[key])
    assert out["tuned"].returncode == 0, out["tuned"].stderr
    bad = out["bad"]
    assert bad.returncode == 2 and "only be tuned through LoRA" in bad.stderr and "Traceback" not in bad.stderr


@commands
def export_writes_a_bundle_and_reports_int8_error(folder, shield_folder):
    return {
        "export": run("export", "--model", TINY, "--quantize", "int8", "--prefill", "8,16", "--kv-len", "32",
                      "-o", str(folder / "tiny.litertlm")),
        "bad": run("export", "--model", TINY, "--prefill", "64", "--kv-len", "32", "-o", str(folder / "x.tflite")),
    }


def test_export_writes_a_bundle_and_reports_int8_error(outcome):
    out, folder = outcome
    assert out["export"].returncode == 0, out["export"].stderr
    assert (folder / "tiny.litertlm").read_bytes()[:8] == b"LITERTLM"
    lines = out["export"].stdout.splitlines()
    assert lines[0].startswith(f"wrote {folder / 'tiny.litertlm'} (") and lines[1] == "int8 against float32 on a sample text:"
    assert sorted(line.split()[0] for line in lines[2:]) == ["decode", "prefill_16", "prefill_8"]
    bad = out["bad"]
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1] == (
        "gemma-kit: error: prefill lengths [64] must be between 1 and the KV cache length 32")
    assert not (folder / "x.tflite").exists()


@commands
def export_gguf_runs_like_the_source(folder, shield_folder):
    return {
        "export": run("export", "--model", TINY, "--quantize", "f32", "-o", str(folder / "tiny.gguf")),
        "bad": run("export", "--model", TINY, "--format", "gguf", "--quantize", "int4", "-o", str(folder / "x")),
    }


def test_export_gguf_runs_like_the_source(outcome):
    """`--format gguf` from the extension: the written file loads back with the source's
    weights (f32), and a LiteRT-only weight format is refused by name."""
    import numpy as np

    import gemma_kit

    out, folder = outcome
    assert out["export"].returncode == 0, out["export"].stderr
    assert out["export"].stdout.startswith(f"wrote {folder / 'tiny.gguf'} (")
    ids = [[2, 40, 50, 60, 70]]
    assert np.array_equal(gemma_kit.logits(gemma_kit.load_model(str(folder / "tiny.gguf")), ids),
                          gemma_kit.logits(gemma_kit.load_model(TINY), ids))
    bad = out["bad"]
    assert bad.returncode == 2 and "GGUF quantization 'int4' is not one of f16, q8_0, f32" in bad.stderr
    assert not (folder / "x").exists()


@commands
def export_guard_writes_the_classifier_folder(folder, shield_folder):
    return run("export-guard", "--model", str(shield_folder), "--policies", "dangerous,hate",
               "--prompt-length", "256", "--response-length", "320", "-o", str(folder / "guard"))


def test_export_guard_writes_the_classifier_folder(outcome):
    out, folder = outcome
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in (folder / "guard").iterdir()) == [".gemma-kit", "guard.json", "guard.tflite",
                                                                   "tokenizer.model"]
    config = json.loads((folder / "guard" / "guard.json").read_text())
    assert [p["key"] for p in config["policies"]] == ["dangerous", "hate"]
