# marketd: `make demo` runs the service with demo data; `make test` runs the whole suite;
# `make unit` only the tests that need no PostgreSQL, Redis, chain or IPFS peer.
# Every install comes from the committed lock (requirements-dev.txt, with hashes);
# `make lock` re-resolves it from pyproject.toml and runs the suite on the result.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
LOCK   := requirements-dev.txt
COMPILE = $(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11

.PHONY: install demo test unit lint typecheck lock clean

$(BIN)/marketd: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	touch $(BIN)/marketd

install: $(BIN)/marketd

demo: install
	$(BIN)/marketd demo

lint: install
	$(BIN)/ruff check src tests $(wildcard bench)
	$(BIN)/ruff format --check src tests $(wildcard bench)
	$(BIN)/lint-imports  # the layers in pyproject.toml's [tool.importlinter]: no package cycle

typecheck: install
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest --cov --cov-branch --cov-report=term-missing --cov-fail-under=95

# The fast tier: every test not marked `integration` (tests/conftest.py marks each test that uses
# a PostgreSQL, Redis, chain or IPFS fixture), no coverage threshold: for the edit-test loop.
unit: install
	$(BIN)/pytest -m "not integration" -q

# Re-resolve both lock files to the newest versions pyproject.toml allows (requirements.txt is
# constrained by requirements-dev.txt, so the image and the tests run the same versions), reinstall from
# them, then run the whole suite: commit the lock only when this is green.
lock: install
	$(COMPILE) --upgrade pyproject.toml requirements-build.in --extra dev -o requirements-dev.txt
	$(COMPILE) pyproject.toml requirements-build.in -c requirements-dev.txt -o requirements.txt
	$(BIN)/pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/pip check
	$(MAKE) test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .coverage .coverage.* coverage.xml \
		htmlcov .hypothesis data bench/out scripts/ipfs-peer/node_modules src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
