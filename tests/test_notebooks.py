"""Every notebook in notebooks/ runs top to bottom (its quick settings: ``BAYES_SCALING_QUICK=1``) and is
committed without outputs.

Executed with nbclient in a kernel of this interpreter (the venv), ``MPLBACKEND=Agg``, working directory
notebooks/. A notebook that errors fails with the failing cells' tracebacks; a cell that runs longer than
``NOTEBOOK_TIMEOUT`` seconds is stopped (a hang guard, not a timing: each notebook takes well under a minute on
an idle machine; timings belong in the benchmark).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
NOTEBOOK_TIMEOUT = 240  # seconds per cell before nbclient stops it (a hang guard)


@pytest.fixture
def kernel_env(tmp_path, monkeypatch):
    """A kernel spec that runs *this* interpreter, found first on JUPYTER_PATH; Agg backend."""
    spec = tmp_path / "kernels" / "bayes-scaling-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "bayes_scaling tests", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    # the notebooks' quick settings (fewer draws, fewer refits; the same cells and figures): the documentation
    # site runs them with their full settings
    monkeypatch.setenv("BAYES_SCALING_QUICK", "1")
    return "bayes-scaling-test"


def test_there_are_notebooks():
    names = [p.name for p in PATHS]
    assert {"01_quickstart.ipynb", "03_comparing_curricula.ipynb", "07_your_own_law.ipynb",
            "10_reproducing_published_fits.ipynb", "12_choosing_a_model_to_finetune.ipynb"} <= set(names), names


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; clear them before committing " \
                      "(jupyter nbconvert --clear-output --inplace)"


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs(path, kernel_env):
    _execute(nbformat.read(path, as_version=4), path, kernel_env)


def test_a_failing_notebook_fails(kernel_env, tmp_path):
    """The check above can fail: a notebook with an error in its second cell."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("x / 0")])
    with pytest.raises(AssertionError, match="cell 1: ZeroDivisionError"):
        _execute(nb, tmp_path / "failing.ipynb", kernel_env)


def _execute(nb, path: Path, kernel_env: str) -> None:
    # allow_errors: every cell runs and the assertion below reports each failing cell (nbclient would stop
    # at the first error and raise before any assertion could)
    client = nbclient.NotebookClient(nb, kernel_name=kernel_env, timeout=NOTEBOOK_TIMEOUT, allow_errors=True,
                                     startup_timeout=120, resources={"metadata": {"path": str(NOTEBOOKS)}})
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    errors = [f"cell {i}: {o.get('ename')}: {o.get('evalue')}\n" + "\n".join(o.get("traceback", []))
              for i, c in enumerate(nb.cells) if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, f"{path.name}:\n" + "\n\n".join(errors)
    unexecuted = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.get("execution_count") is None]
    assert not unexecuted, f"{path.name}: cells {unexecuted} did not run"
    print(f"{path.name}: {elapsed:.0f} s")
