"""Every notebook runs top to bottom (its cells assert what they show). A set-up cell
first gives its kernel the run's shared default-model exports, so a notebook showing
an export that a test has made is served that file.

The notebooks run in the run's background queue (`background`), after the exports
they are served, each test taking its notebook's outcome. Their kernels share the
run's JAX compilation cache: an entry read while another process writes it is only a
warning and a compilation."""

import nbclient
import nbformat
import pytest

from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SETUP = "import sys\nsys.path.insert(0, {tests!r})\nimport shared_exports\nshared_exports.install({folder!r})"
# A kernel holds the default model and, in the tuning notebook, its optimizer state.
KERNEL_MEMORY = 8 * 2**30


def background_jobs(request):
    """The selected notebooks' runs."""
    selected = [item.callspec.params["path"] for item in request.session.items if item.function is test_notebook_runs]
    if not selected:
        return []
    exports = request.getfixturevalue("shared_exports")
    return [(path.name, lambda path=path: run(path, exports), KERNEL_MEMORY) for path in selected]


def run(path, exports):
    """The notebook executed in a fresh kernel (the first failing cell raises)."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(SETUP.format(tests=str(ROOT / "tests"), folder=str(exports))))
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    return nb


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, background):
    nb = background.result(path.name)
    errors = [o for cell in nb.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
