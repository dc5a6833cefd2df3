# marketd: `make demo` runs the service with demo data; `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: install demo test lint typecheck unit clean

$(BIN)/marketd: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(BIN)/marketd

install: $(BIN)/marketd

demo: install
	$(BIN)/marketd demo

lint: install
	$(BIN)/ruff check src tests $(wildcard bench)
	$(BIN)/ruff format --check src tests $(wildcard bench)

typecheck: install
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest --cov --cov-branch --cov-report=term-missing --cov-fail-under=95

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage data
