"""Export work in a TensorFlow child process, for callers on another Keras backend.

The LiteRT graphs are traced with TensorFlow, and Keras' backend is fixed per process.
A model source is handed to the child as it is; a loaded model as a keras-hub preset
written to a temporary folder (LoRA adapters merged on save). The child prints its
result as one JSON line; an expected failure (`GemmaKitError`) comes back as exit code
2 with {"error": message} and is raised again here.
"""

import collections
import json
import os
import subprocess
import sys
import tempfile

from gemma_kit.errors import GemmaKitError


def run(module, model, args, check_model=None):
    """`python -m module <model source> *args` under TensorFlow: its JSON result."""
    with tempfile.TemporaryDirectory() as scratch:
        if not isinstance(model, (str, os.PathLike)):
            from gemma_kit.finetune.lora import save_preset

            if check_model:
                check_model(model)
            model = save_preset(model, os.path.join(scratch, "preset"))
        command = [sys.executable, "-m", module, os.fspath(model), *map(str, args)]
        # The child's stdout goes to a file, so that only stderr is read while it runs: the
        # converter's and quantizer's progress goes on to this process's stderr, and its
        # end is kept for the error message.
        with open(os.path.join(scratch, "stdout"), "w+") as stdout_file:
            child = start_child(command, child_env(), stdout_file)
            tail = collections.deque(maxlen=30)
            for line in child.stderr:
                sys.stderr.write(line)
                tail.append(line)
            returncode = child.wait()
            stdout_file.seek(0)
            stdout = stdout_file.read()
    if returncode not in (0, 2):
        raise GemmaKitError(f"export in a TensorFlow process failed (exit code {returncode}):\n{''.join(tail)}")
    # The last line is the result; the quantizer prints its summary before it.
    result = json.loads(stdout.strip().splitlines()[-1])
    if returncode:
        raise GemmaKitError(result["error"])
    return result


def child_env():
    """The child's environment: this one's, under TensorFlow, with the kit importable."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # oneDNN's CPU allocator keeps freed buffers for TensorFlow's reuse (a 2B's float32
    # weights, 10 GB, stayed resident after int8 quantization); without it they go back
    # to the system before the converter runs.
    return {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0",
            "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}


def start_child(command, env, stdout):
    """The child process: `stdout` to the file, stderr to a pipe. One place, so that a
    caller who runs many exports can serve them from an interpreter that has already
    imported TensorFlow (the test suite does)."""
    return subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE, text=True, env=env)


def child_main(work):
    """Run `work()` in the child; print its JSON-able result; return the exit code."""
    try:
        result = work()
    except GemmaKitError as e:
        print(json.dumps({"error": str(e)}))
        return 2
    print(json.dumps(result))
    return 0
