"""The default model's exports, made once per test run and shared: by the tests that
export it with the same options and by the notebooks that show the same export
(`test_notebooks` installs this in each notebook's kernel before its first cell).

Every export from another backend runs in a TensorFlow process (`tf_process.run`); for
the source "default", this serves a later call with the same module and options from
a copy of the first one's output instead of running that process again.

`prefetch` makes the exports that test modules declare (`DEFAULT_EXPORTS`) in a
background thread from the start of the run: the converter works on one core, and a
test process leaves the second one idle for much of the run.
"""

import collections
import hashlib
import json
import os
import shutil
import threading
import time

from mobile_export import tf_process

SOURCE = "default"
# A background export starts only with this much memory free: the 270M's float32
# classifier export peaks at 9.5 GB.
PREFETCH_MEMORY = 11 * 2**30
_entry_locks = collections.defaultdict(threading.Lock)


def install(folder):
    """Route `tf_process.run` for the default model through the cache in `folder`."""
    run = tf_process.run

    def cached(module, model, args, check_model=None):
        if model != SOURCE:
            return run(module, model, args, check_model)
        out, options = os.fspath(args[0]), [str(a) for a in args[1:]]
        entry = os.path.join(folder, hashlib.sha256(json.dumps([module, *options]).encode()).hexdigest()[:16])
        with _entry_locks[entry]:  # a test asking for an export being made waits for it
            if not os.path.isdir(entry):
                result = run(module, model, args, check_model)
                staging = f"{entry}.partial"
                shutil.rmtree(staging, ignore_errors=True)
                os.makedirs(staging)
                _copy(out, os.path.join(staging, "output"))
                with open(os.path.join(staging, "result.json"), "w") as f:
                    json.dump(result, f)
                os.replace(staging, entry)
                return result
        _copy(os.path.join(entry, "output"), out)
        with open(os.path.join(entry, "result.json")) as f:
            return {**json.load(f), "path": out}

    tf_process.run = cached


def prefetch(exports, scratch):
    """Run `function(SOURCE, out, **options)` for each (function, name, options) of
    `exports`, in order, in a background thread, so that their entries are made before
    the tests ask; return a `stop()` that lets a running export finish, starts no
    other, and returns what was made: (label, seconds, error or None) each."""
    stopping = threading.Event()
    made = []

    def work():
        for function, name, options in exports:
            while not stopping.is_set() and _free_memory() < PREFETCH_MEMORY:
                stopping.wait(5)
            if stopping.is_set():
                return
            label = f"{function.__name__}-{name}"
            out, start, error = os.path.join(scratch, label), time.monotonic(), None
            try:
                function(SOURCE, out, **options)
            except Exception as e:  # noqa: BLE001 - no entry is made, so the test's own call reports it
                error = f"{type(e).__name__}: {str(e)[:200]}"
            made.append((label, time.monotonic() - start, error))
            _remove(out)

    thread = threading.Thread(target=work, name="prefetch-default-exports", daemon=True)
    thread.start()

    def stop():
        stopping.set()
        thread.join()
        return made

    return stop


def _free_memory():
    with open("/proc/meminfo") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["MemAvailable"].split()[0]) * 1024


def _copy(source, target):
    if os.path.isdir(source):
        shutil.copytree(source, target)
    else:
        shutil.copyfile(source, target)


def _remove(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)
