# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.crossrank-installed
PYTEST_ARGS ?=

.PHONY: setup models demo test test-fast lint clean

setup: $(STAMP)

# torch first, pinned: the CPU wheel lies on this kind of machine, and an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[all,test]"
	touch $(STAMP)

models: setup
	$(BIN)/crossrank --log-level INFO models build embedded

demo: models
	$(BIN)/crossrank demo

lint: setup
	$(BIN)/ruff check .

test: models
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: models
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
