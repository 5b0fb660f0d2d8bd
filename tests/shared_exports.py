"""Exports of sources that stay the same for the whole run (the default model, the
fixture files, the tiny random models of `tiny_source`), made once per run and shared:
by the tests that export them with the same options and by the notebooks that show the
same export (`test_notebooks` installs this in each notebook's kernel before its first
cell).

Every export from another backend runs in a TensorFlow process (`tf_process.run`); for
such a source, this serves a later call with the same module, source and options from
a copy of the first one's output instead of running that process again.

`export_jobs` makes the exports that test modules declare (`SHARED_EXPORTS`) jobs of
the run's background queue (`background`), so that they are made before tests ask.
"""

import collections
import hashlib
import json
import os
import pathlib
import shutil
import threading

from mobile_export import tf_process

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
# A tiny random model (`tiny_models`) saved once for the run: kind "lm" over the GGUF
# fixtures' vocabulary (512 pieces), "shield" over the shield test tokenizer.
Tiny = collections.namedtuple("Tiny", "kind geometry")
# A background export starts only with this much memory free: the 270M's float32
# classifier export peaks at 9.5 GB.
EXPORT_MEMORY = 11 * 2**30
FIXTURE_EXPORT_MEMORY = 2 * 2**30
_entry_locks = collections.defaultdict(threading.Lock)
_tiny_sources = None  # the run's folder of tiny models, set by `install`


def install(folder):
    """Route `tf_process.run` for the run's fixed sources through the cache in `folder`."""
    global _tiny_sources
    _tiny_sources = os.path.join(folder, "sources")
    run = tf_process.run

    def cached(module, model, args, check_model=None):
        if not _fixed(model):
            return run(module, model, args, check_model)
        out, options = os.fspath(args[0]), [str(a) for a in args[1:]]
        key = json.dumps([module, os.fspath(model), *options])
        entry = os.path.join(folder, hashlib.sha256(key.encode()).hexdigest()[:16])
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


def tiny_source(source):
    """The folder of `source`, a `Tiny` (saved on first use, by the thread that asks:
    the models are drawn from torch's global seed)."""
    from tiny_models import save_model, save_shield_model

    if _tiny_sources is None:
        raise RuntimeError("tiny sources need the shared_exports fixture")
    folder = pathlib.Path(_tiny_sources, f"{source.kind}-{source.geometry}")
    with _entry_locks[str(folder)]:
        if not folder.is_dir():
            staging = folder.with_suffix(".partial")
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            if source.kind == "lm":
                from gemma_kit.models.gguf_model import GGUFModelFile

                vocabulary = GGUFModelFile(os.path.join(FIXTURES, "tiny_gemma2_f32.gguf")).sentencepiece_proto()
                save_model(source.geometry, staging, vocabulary, 512)
            else:
                save_shield_model(source.geometry, staging, pathlib.Path(FIXTURES, "tiny_shield_tokenizer.model").read_bytes())
            os.replace(staging, folder)
    return folder


def export_jobs(exports, scratch):
    """Background jobs (`background.Queue`) that make the entries of `exports`,
    (function, source, name, options) each, by calling `function(source, out, **options)`;
    a `Tiny` source is saved here, before any job runs."""

    def job(function, source, name, options):
        if isinstance(source, Tiny):
            source = str(tiny_source(source))
        label = f"{function.__name__} {os.path.basename(os.fspath(source))} {name}"
        out = os.path.join(scratch, label.replace(" ", "-"))

        def make():
            try:
                function(source, out, **options)
            finally:
                _remove(out)

        return label, make, EXPORT_MEMORY if source == "default" else FIXTURE_EXPORT_MEMORY

    return [job(*export) for export in exports]


def _fixed(model):
    """The default model, a file of the test fixtures, or a tiny source."""
    if not isinstance(model, (str, os.PathLike)):
        return False
    return model == "default" or os.path.dirname(os.path.abspath(model)) in (FIXTURES, _tiny_sources)


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
