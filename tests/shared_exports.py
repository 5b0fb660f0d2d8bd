"""The default model's exports, made once per test run and shared: by the tests that
export it with the same options and by the notebooks that show the same export
(`test_notebooks` installs this in each notebook's kernel before its first cell).

Every export from another backend runs in a TensorFlow process (`tf_process.run`); for
the source "default", this serves a later call with the same module and options from
a copy of the first one's output instead of running that process again.
"""

import hashlib
import json
import os
import shutil

from mobile_export import tf_process

SOURCE = "default"


def install(folder):
    """Route `tf_process.run` for the default model through the cache in `folder`."""
    run = tf_process.run

    def cached(module, model, args, check_model=None):
        if model != SOURCE:
            return run(module, model, args, check_model)
        out, options = os.fspath(args[0]), [str(a) for a in args[1:]]
        entry = os.path.join(folder, hashlib.sha256(json.dumps([module, *options]).encode()).hexdigest()[:16])
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


def _copy(source, target):
    if os.path.isdir(source):
        shutil.copytree(source, target)
    else:
        shutil.copyfile(source, target)
