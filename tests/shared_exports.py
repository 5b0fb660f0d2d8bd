"""The default model's exports, made once per test run and shared: by the tests that
export it with the same options and by the notebooks that show the same export
(`test_notebooks` installs this in each notebook's kernel before its first cell).

Every export from another backend runs in a TensorFlow process (`tf_process.run`); for
the source "default", this serves a later call with the same module and options from
a copy of the first one's output instead of running that process again.

`export_jobs` makes the exports that test modules declare (`DEFAULT_EXPORTS`) jobs of
the run's background queue (`background`), so that they are made before tests ask.
"""

import collections
import hashlib
import json
import os
import shutil
import threading

from mobile_export import tf_process

SOURCE = "default"
# A background export starts only with this much memory free: the 270M's float32
# classifier export peaks at 9.5 GB.
EXPORT_MEMORY = 11 * 2**30
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


def export_jobs(exports, scratch):
    """Background jobs (`background.Queue`) that make the entries of `exports`,
    (function, name, options) each, by calling `function(SOURCE, out, **options)`."""

    def job(function, name, options):
        out = os.path.join(scratch, f"{function.__name__}-{name}")

        def make():
            try:
                function(SOURCE, out, **options)
            finally:
                _remove(out)

        return f"{function.__name__}-{name}", make, EXPORT_MEMORY

    return [job(*export) for export in exports]


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
