# peerlab: the two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
PYTEST_WORKERS ?= 2

.PHONY: demo test lint typecheck resilience chaos stress mutants consensus connectivity clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/peerlab demo

test: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/mypy
	$(BIN)/pytest -n $(PYTEST_WORKERS) -m "not stress" --durations=15

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	$(BIN)/mypy

resilience: $(STAMP)
	$(BIN)/pytest -m resilience

stress: $(STAMP)
	$(BIN)/pytest -m stress

clean:
	rm -rf $(VENV) peerlab-results .mypy_cache .ruff_cache .pytest_cache
