import os
import pathlib
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
BACKGROUND = pytest.StashKey[list]()
FIXTURES = ROOT / "tests" / "fixtures"
sys.path.insert(0, str(ROOT / "tools"))

from warm_python import Server  # noqa: E402

TENSORFLOW_PYTHON = Server(["tensorflow", "keras", "keras_hub", "tensorflow.lite.python.lite", "sentencepiece",
                            "safetensors"])
CLI_PYTHON = Server(["jax", "tensorflow", "keras", "keras_hub", "sentencepiece", "safetensors"])


@pytest.fixture(scope="session", autouse=True)
def compilation_cache(tmp_path_factory):
    """One JAX compilation cache for the run, in its temp folder: a function compiled
    again (a tiny model loaded anew, keras-hub's generate rebuilt after a sampler
    change, a notebook kernel or CLI child doing what a test did) is read back instead
    of compiled. Child processes get it through the environment."""
    folder = str(tmp_path_factory.mktemp("jax_compilation_cache"))
    os.environ.update({"JAX_COMPILATION_CACHE_DIR": folder, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0.2"})
    if "jax" in sys.modules:  # already imported by the test modules: too late for the environment
        import jax

        jax.config.update("jax_compilation_cache_dir", folder)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    return folder


@pytest.fixture(scope="session", autouse=True)
def warm_python():
    """The run's `python -m` children forked from interpreters that have imported
    TensorFlow, JAX and keras-hub (`warm_python`), started at first use: each child
    skips 7 s of imports. Their code, arguments, streams and exit codes are those of
    `python -m`. The TensorFlow processes that exports from another backend start
    (`tf_process`) come from `TENSORFLOW_PYTHON`; `gemma-kit` commands (test_cli)
    from `CLI_PYTHON`."""
    from mobile_export import tf_process

    start = tf_process.start_child
    if os.environ["KERAS_BACKEND"] != "tensorflow":  # there, exports run in this process
        tf_process.start_child = TENSORFLOW_PYTHON.popen
    yield
    tf_process.start_child = start
    for server in (TENSORFLOW_PYTHON, CLI_PYTHON):
        server.stop()


@pytest.fixture(scope="session")
def shared_exports(tmp_path_factory):
    """The run's cache of exports of fixed sources (`shared_exports`), in use in this
    process; its folder, for the notebooks' kernels to use too."""
    from shared_exports import install

    folder = tmp_path_factory.mktemp("default_exports")
    install(folder)
    return folder


@pytest.fixture(scope="session", autouse=True)
def background(request, tmp_path_factory, warm_python):
    """The run's background queue (`background.Queue`), started with the run. Each
    module declares its `SHARED_EXPORTS` ((function, source, name, options) of the
    exports of fixed sources it makes, see `shared_exports`) and its other jobs
    (`background_jobs(request)`). The queue takes the longest first: the default
    model's exports (minutes each, and several tests and notebooks wait for them), then
    the notebooks, then the rest module by module in the order the tests run; a test
    that comes before the queue does its short job itself. Not started on TensorFlow,
    where an export would run in a thread of this process rather than in a child
    process: each test does its own job. Stopped before `warm_python`, whose
    interpreters its jobs use."""
    from background import Queue
    from shared_exports import export_jobs

    modules = list(dict.fromkeys(item.module for item in request.session.items if hasattr(item, "module")))
    if any(getattr(module, "SHARED_EXPORTS", ()) for module in modules):
        request.getfixturevalue("shared_exports")
    scratch, default_exports, notebooks, rest = str(tmp_path_factory.mktemp("background_exports")), [], [], []
    for module in modules:  # in the order the tests will ask
        exports = getattr(module, "SHARED_EXPORTS", ())
        default_exports += export_jobs([e for e in exports if e[1] == "default"], scratch)
        rest += export_jobs([e for e in exports if e[1] != "default"], scratch)
        jobs = module.background_jobs(request) if hasattr(module, "background_jobs") else []
        (notebooks if module.__name__ == "test_notebooks" else rest).extend(jobs)
    queue = Queue(default_exports + notebooks + rest, start=os.environ["KERAS_BACKEND"] != "tensorflow")
    yield queue
    request.config.stash[BACKGROUND] = queue.stop()


@pytest.fixture
def exclusive(background):
    """For a test that keeps both cores busy: no background job starts while it runs."""
    with background.exclusive():
        yield


def pytest_collection_modifyitems(items):
    """The tests marked `last` (default-model training, minutes with both cores busy) run
    after the others: the queue then reaches their background jobs once it has no other
    work, and they fill the cores that the last single-threaded tests leave idle, instead
    of holding up the tests that wait for the queue."""
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)


def pytest_terminal_summary(terminalreporter, config):
    """The background jobs' times, which no test's duration shows."""
    made = config.stash.get(BACKGROUND, [])
    if made:
        terminalreporter.section("jobs done in the background")
        for label, seconds, error in made:
            terminalreporter.write_line(f"{seconds:8.2f}s {label}" + (f"  FAILED ({error})" if error else ""))


@pytest.fixture(scope="session")
def default_lm():
    import gemma_kit

    return gemma_kit.load_model("default")


@pytest.fixture(scope="session")
def tiny_tokenizer_model():
    """tokenizer.model bytes for the tiny vocabulary of the GGUF fixtures."""
    from gemma_kit.models.gguf_model import GGUFModelFile

    return GGUFModelFile(FIXTURES / "tiny_gemma2_f32.gguf").sentencepiece_proto()


@pytest.fixture(scope="session")
def tiny_shield_folder(tmp_path_factory):
    """HF folder: a tiny random Gemma 2 with a tokenizer that has Yes / No."""
    from tiny_models import save_shield_model

    folder = tmp_path_factory.mktemp("tiny_shield")
    save_shield_model("gemma2_2b_geometry", folder, (FIXTURES / "tiny_shield_tokenizer.model").read_bytes())
    return folder


@pytest.fixture(scope="session")
def tiny_shield(tiny_shield_folder):
    import gemma_kit
    from gemma_kit.shield import ShieldGemma

    return ShieldGemma(gemma_kit.load_model(str(tiny_shield_folder)))
