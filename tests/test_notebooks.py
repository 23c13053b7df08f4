"""Every notebook in notebooks/ runs top to bottom (small settings) and is committed without outputs.

Executed with nbclient in a kernel of this interpreter (the venv), ``MPLBACKEND=Agg``, working directory
notebooks/. A notebook that errors fails with the failing cell's traceback; one that runs longer than
``NOTEBOOK_TIMEOUT`` seconds fails too (each should take well under a minute on an idle machine).
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
NOTEBOOK_TIMEOUT = 240  # seconds per notebook (a loaded 2-core machine; ~60 s idle)


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
    return "bayes-scaling-test"


def test_there_are_notebooks():
    names = [p.name for p in PATHS]
    assert "01_quickstart.ipynb" in names and "03_comparing_curricula.ipynb" in names, names


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
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name=kernel_env, timeout=NOTEBOOK_TIMEOUT,
                                     startup_timeout=120, resources={"metadata": {"path": str(NOTEBOOKS)}})
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    assert elapsed < NOTEBOOK_TIMEOUT, f"{path.name} took {elapsed:.0f} s (limit {NOTEBOOK_TIMEOUT} s)"
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    print(f"{path.name}: {elapsed:.0f} s")
