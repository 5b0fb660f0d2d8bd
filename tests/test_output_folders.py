"""No command deletes what it did not write (`gemma_kit.files`): an output folder is
replaced only when it is new, empty or the kit's own output of the same kind; a folder
holding other files is refused, or written into with them kept (`--overwrite`); the
root, the home folder, the current folder and its parents are always refused. Each
output-writing command is refused before it loads a model."""

import os

import pytest
from conftest import FIXTURES

from gemma_kit import cli
from gemma_kit.errors import GemmaKitError
from gemma_kit.files import OWNER_FILE, atomic_folder, check_output_folder

TINY = str(FIXTURES / "tiny_gemma2_f32.gguf")


def snapshot(folder):
    """{relative path: bytes} of every file under `folder`."""
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, folder)] = f.read()
    return files


@pytest.fixture
def unrelated(tmp_path):
    """A folder holding a user's file, the current folder while the test runs."""
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    os.chdir(folder)
    yield folder
    os.chdir(tmp_path)


def write(folder, kind, names, overwrite=False):
    with atomic_folder(folder, kind, overwrite) as staging:
        for name in names:
            with open(os.path.join(staging, name), "w") as f:
                f.write(name)


def test_new_empty_and_own_folders_are_replaced_whole(tmp_path):
    write(tmp_path / "new", "dashboard", ["a.html", "b.html"])
    assert snapshot(tmp_path / "new") == {"a.html": b"a.html", "b.html": b"b.html", OWNER_FILE: b"dashboard\n"}
    write(tmp_path / "new", "dashboard", ["c.html"])  # its own earlier output
    assert snapshot(tmp_path / "new") == {"c.html": b"c.html", OWNER_FILE: b"dashboard\n"}
    (tmp_path / "empty").mkdir()
    write(tmp_path / "empty", "guard", ["guard.json"])
    assert sorted(snapshot(tmp_path / "empty")) == [OWNER_FILE, "guard.json"]


def test_other_files_are_refused_or_kept(tmp_path, unrelated):
    before = snapshot(unrelated)
    sub = unrelated / "out"
    sub.mkdir()
    (sub / "keep.txt").write_text("mine")
    with pytest.raises(GemmaKitError, match="holds files gemma-kit did not write"):
        write(sub, "dashboard", ["index.html"])
    write(tmp_path / "guard", "guard", ["guard.json"])
    with pytest.raises(GemmaKitError, match="holds files gemma-kit did not write as a dashboard"):
        write(tmp_path / "guard", "dashboard", ["index.html"])  # the kit's, but another kind
    write(sub, "dashboard", ["index.html"], overwrite=True)
    assert snapshot(sub) == {"keep.txt": b"mine", "index.html": b"index.html"}  # no owner file: still not the kit's
    with pytest.raises(GemmaKitError, match="did not write"):
        write(sub, "dashboard", ["index.html"])
    assert snapshot(unrelated) == {**before, "out/keep.txt": b"mine", "out/index.html": b"index.html"}
    assert not [p for p in unrelated.iterdir() if p.name.startswith(".")]  # no staging folder left


@pytest.mark.parametrize("where", [".", "..", "~", "/", "cwd"])
def test_the_current_home_and_root_folders_are_always_refused(where, unrelated):
    path = {"~": os.path.expanduser("~"), "cwd": os.getcwd()}.get(where, where)
    before = snapshot(unrelated)
    with pytest.raises(GemmaKitError, match="refusing to write output into"):
        write(path, "dashboard", ["index.html"], overwrite=True)
    assert snapshot(unrelated) == before


def test_a_failed_write_leaves_the_old_folder(tmp_path):
    write(tmp_path / "out", "dashboard", ["old.html"])
    with pytest.raises(RuntimeError):
        with atomic_folder(tmp_path / "out", "dashboard") as staging:
            open(os.path.join(staging, "new.html"), "w").close()
            raise RuntimeError("interrupted")
    assert sorted(snapshot(tmp_path / "out")) == [OWNER_FILE, "old.html"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_file_is_not_a_folder(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(GemmaKitError, match="exists and is not a folder"):
        check_output_folder(tmp_path / "f", "guard")


# Every output-writing command, its output flag last. The model is the tiny fixture; the
# other inputs exist, so that only the output is wrong.
COMMANDS = {
    "scope dashboard": ["scope", "dashboard", "--model", TINY, "--sae", "{sae}", "--site", "1.res", "--features", "1",
                        "--texts", "{texts}", "-o"],
    "export-guard": ["export-guard", "--model", TINY, "-o"],
    "finetune": ["finetune", "--model", TINY, "--data", "{data}", "--out"],
    "export tflite": ["export", "--model", TINY, "--format", "tflite", "-o"],
    "export litertlm": ["export", "--model", TINY, "--format", "litertlm", "-o"],
    "export task": ["export", "--model", TINY, "--format", "task", "-o"],
    "export gguf": ["export", "--model", TINY, "--format", "gguf", "-o"],
    "shield calibrate": ["shield", "calibrate", "{data}", "--model", TINY, "-o"],
}


@pytest.mark.parametrize("target", ["folder holding a file", "."])
@pytest.mark.parametrize("command", COMMANDS)
def test_commands_refuse_folders_they_did_not_write(command, target, unrelated, tmp_path, capsys, monkeypatch):
    def fail(*_, **__):
        raise AssertionError("the model was loaded before the output was checked")

    monkeypatch.setattr(cli, "_load", fail)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "texts.txt").write_text("a text\n")
    (inputs / "data.jsonl").write_text('{"prompt": "hi", "response": "hello"}\n')
    values = {"sae": str(FIXTURES / "sae_gemma_scope.npz"), "texts": str(inputs / "texts.txt"),
              "data": str(inputs / "data.jsonl")}
    argv = [a.format(**values) for a in COMMANDS[command]] + [str(unrelated) if target != "." else "."]
    before = snapshot(unrelated)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("gemma-kit: error: ") == 1 and "Traceback" not in err, err
    assert snapshot(unrelated) == before
