# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo check test test-fast clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev,onnx,openvino]"
	touch $(STAMP)

install: $(STAMP)

# The main job: train ResNet-20 on the embedded digits data and report test accuracy.
demo: $(STAMP)
	$(BIN)/resnets train --config demo

# Lint (ruff), types (mypy on models/, train/, deploy/, bench/ and the runtime, see pyproject.toml), no import cycles.
check: $(STAMP)
	$(BIN)/ruff check src tests tools benchmarks examples
	$(BIN)/mypy
	$(BIN)/python tools/import_cycles.py src/resnets tests benchmarks tools

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
