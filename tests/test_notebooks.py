"""Every notebook runs top to bottom (its cells assert what they show). A set-up cell
first gives its kernel the run's shared default-model exports, so a notebook showing
an export that a test has made is served that file."""

import nbclient
import nbformat
import pytest

from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SETUP = "import sys\nsys.path.insert(0, {tests!r})\nimport shared_exports\nshared_exports.install({folder!r})"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, shared_exports):
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(SETUP.format(tests=str(ROOT / "tests"), folder=str(shared_exports))))
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    errors = [o for cell in nb.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
