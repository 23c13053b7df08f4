# Two commands set everything up on a fresh machine:  `make demo`  and  `make test`.
# Both create .venv from a Python >= 3.12 found on this machine (see .ci/find-python) when it is missing,
# install the package in editable mode with its development extras, then run.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test test-slow bench lint clean venv
venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || { p=$$(PYTHON="$(PYTHON)" bash .ci/find-python) || exit 1; echo "using $$p"; "$$p" -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/bayes-scaling demo --out demo-output

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test-slow: $(STAMP)
	@$(PY) -m pytest -m slow $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "no slow tests collected"; exit 0; fi; exit $$rc

bench: $(STAMP)
	$(PY) benchmarks/bench.py

lint: $(STAMP)
	$(VENV)/bin/ruff check bayes_scaling tests

clean:
	rm -rf $(VENV) demo-output .pytest_cache
