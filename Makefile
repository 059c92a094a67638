# The two commands a new user runs: `make demo` and `make test` (see README).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= demo-out

.PHONY: demo test lint typecheck pytest system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Reinstall only when the dependency pins change.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

## demo: a simulated shop day through replay -> engine -> ledger -> export (no servers, no root)
demo: $(VENV)/.installed
	$(BIN)/shopwatt demo --output $(OUT)

system-deps:
	.ci/system-deps

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

pytest: $(VENV)/.installed-test system-deps
	$(BIN)/pytest

## test: install what the tests need, then ruff, mypy and pytest
test: lint typecheck pytest

clean:
	rm -rf $(VENV) $(OUT) .mypy_cache .ruff_cache .pytest_cache
