# Two commands set everything up on a fresh machine:  `make demo`  and  `make test`.
# Both create .venv from a Python >= 3.12 found on this machine (see .ci/find-python) when it is missing,
# install the exact versions of the lock (requirements/dev.txt: every dependency, with hashes; the versions CI
# tested), then the package in editable mode, then run. `make lock` refreshes the lock (uv, from pyproject's
# ranges); `make test-latest` runs the suite on the newest versions pyproject allows (a separate .venv-latest).
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
LOCK    := requirements/dev.txt
PYTEST_ARGS ?=
# the default suite on two worker processes (pytest-xdist; sampling alone does not keep both cores busy:
# compiling and the notebooks run on one; loadscope: a module's fixtures are built once); XDIST= runs it in
# one process
XDIST ?= -n 2 --dist loadscope
# pip's noise about this machine's unreachable extra indexes and its version check
PIP     := -m pip --disable-pip-version-check --quiet

.PHONY: demo test test-latest test-slow bench lint clean venv docs lock check-wheel
venv: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	@test -x $(PY) || { p=$$(PYTHON="$(PYTHON)" bash .ci/find-python) || exit 1; echo "using $$p"; "$$p" -m venv $(VENV); }
	$(PY) $(PIP) install --require-hashes --no-deps -r $(LOCK)
	$(PY) $(PIP) install --no-deps --no-build-isolation -e .
	$(PY) $(PIP) check
	@touch $(STAMP)

# The lock: every package of the dev and docs extras (and the build tools), for Python >= 3.12 on any platform,
# with hashes. uv resolves it (installed into .venv on first use; its version is pinned here).
UV_VERSION := 0.13.9
lock:
	@test -x $(PY) || { p=$$(PYTHON="$(PYTHON)" bash .ci/find-python) || exit 1; "$$p" -m venv $(VENV); }
	@test -x $(VENV)/bin/uv || $(PY) $(PIP) install "uv==$(UV_VERSION)"
	$(VENV)/bin/uv pip compile pyproject.toml requirements/build.in --extra dev --extra docs --universal \
	  --python-version 3.12 --generate-hashes --no-header --quiet --output-file $(LOCK).new
	@{ echo "# The lock of the development environment (make demo, make test, make docs, .ci/run install exactly this)."; \
	   echo "# Made by \`make lock\` (uv pip compile of pyproject.toml's dev and docs extras and requirements/build.in);"; \
	   echo "# do not edit by hand. pyproject.toml keeps the tested ranges for users who pip install the package."; \
	   cat $(LOCK).new; } > $(LOCK) && rm -f $(LOCK).new
	@echo "wrote $(LOCK); commit it, then make test"

# The suite on the newest versions that pyproject.toml's ranges allow (a fresh .venv-latest each time), to catch
# the next release that breaks something before users do. The versions it ran with are printed first.
LATEST := .venv-latest
test-latest:
	rm -rf $(LATEST)
	@p=$$(PYTHON="$(PYTHON)" bash .ci/find-python) || exit 1; "$$p" -m venv $(LATEST)
	$(LATEST)/bin/python $(PIP) install --upgrade --upgrade-strategy eager -e ".[dev,docs]"
	@$(LATEST)/bin/python -c "import importlib.metadata as m; print('newest versions:', ', '.join(f'{p} {m.version(p)}' for p in ('numpy', 'scipy', 'pandas', 'xarray', 'pymc', 'pytensor', 'arviz', 'arviz-stats', 'nutpie', 'numba', 'dask', 'matplotlib', 'h5netcdf', 'h5py')))"
	$(LATEST)/bin/python -m pytest $(XDIST) $(PYTEST_ARGS)

# The installed package, not the checkout: build the sdist and the wheel from it, install the wheel into a fresh
# virtual environment outside the checkout (the lock's versions) and run the README's example and the command
# line there.
check-wheel: $(STAMP)
	PY=$(PY) bash .ci/check-wheel

demo: $(STAMP)
	$(VENV)/bin/bayes-scaling demo --out demo-output

test: $(STAMP)
	$(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

test-slow: $(STAMP)
	@$(PY) -m pytest -m slow $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "no slow tests collected"; exit 0; fi; exit $$rc

bench: $(STAMP)
	$(PY) benchmarks/bench.py

# The documentation site: docs/_build/html (README, Documentation). Warnings are errors; then every internal
# link and anchor of the built pages is checked. Notebooks run at build time and are cached (docs/conf.py).
# The docs extra is part of the lock, so .venv has it.
docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going -n -b html docs docs/_build/html
	$(PY) docs/check_links.py docs/_build/html

lint: $(STAMP)
	$(VENV)/bin/ruff check bayes_scaling tests

clean:
	rm -rf $(VENV) $(LATEST) demo-output .pytest_cache docs/_build docs/_generated
