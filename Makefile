# Two commands set everything up on a fresh machine:  `make demo`  and  `make test`.
# Both create .venv from a Python >= 3.12 found on this machine (see .ci/find-python) when it is missing,
# install the package in editable mode with its development extras, then run.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PYTEST_ARGS ?=
# the default suite on two worker processes (pytest-xdist; sampling alone does not keep both cores busy:
# compiling and the notebooks run on one; loadscope: a module's fixtures are built once); XDIST= runs it in
# one process
XDIST ?= -n 2 --dist loadscope

.PHONY: demo test test-slow bench lint clean venv docs
venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || { p=$$(PYTHON="$(PYTHON)" bash .ci/find-python) || exit 1; echo "using $$p"; "$$p" -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

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
DOCS_STAMP := $(VENV)/.docs-installed
$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev,docs]"
	@touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(PY) -m sphinx -W --keep-going -n -b html docs docs/_build/html
	$(PY) docs/check_links.py docs/_build/html

lint: $(STAMP)
	$(VENV)/bin/ruff check bayes_scaling tests

clean:
	rm -rf $(VENV) demo-output .pytest_cache docs/_build docs/_generated
