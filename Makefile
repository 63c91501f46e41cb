# The commands people type. Everything runs in .venv, made on first use.
# The Lambda runtime's Python (the template's python3.13) where this machine has one, else
# python3 (the code runs on 3.11 and later too): the first that runs.
ifndef PYTHON
PYTHON := $(firstword $(foreach candidate,python3.13 $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13) python3,$(if $(shell $(candidate) -c 'import sys' 2>/dev/null && echo yes),$(candidate))))
endif
# checkov pins its own libraries, and is only a scanner: it keeps the machine's python3.
SCAN_PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Also what `make lock` runs.
UV_VERSION := 0.13.9
# Compiled as pip would, at once on every core: otherwise each first import compiles (the suite's
# workers at the same time, each its own copy). Followed by the venv's --python.
UV_INSTALL := $(BIN)/uv pip install --compile-bytecode
# What these commands run writes its bytecode (the tests' rewritten modules, into the ignored
# __pycache__ folders) even where PYTHONDONTWRITEBYTECODE is set: else each run compiles them again.
export PYTHONDONTWRITEBYTECODE :=
# The suite's workers: its end-to-end tests wait on their stacks a little, so one more than the
# cores (four spent a fifth more processor time contending for two, for no time saved).
TEST_WORKERS ?= $(shell expr $$(nproc) + 1)
# Made again when pyproject.toml or the Python changes.
INSTALLED := $(VENV)/.installed-$(shell (cat pyproject.toml; $(PYTHON) --version) | cksum | cut -d' ' -f1)
# checkov pins its own versions of boto3 and others: it lives in a venv of its own.
CHECKOV_VERSION := 3.3.30
SCAN_VENV ?= .venv-scan
CHECKOV := $(SCAN_VENV)/bin/checkov-$(CHECKOV_VERSION)

.PHONY: install compiled lock schemas test test-unit test-integration test-e2e test-infrastructure lint lint-types lint-template format check bench build deploy clean run up reliability

install: $(INSTALLED)

$(INSTALLED): pyproject.toml layers/shared/requirements.txt
	@echo "Installing sora-relay with its tools into $(VENV), on $$($(PYTHON) --version) (the first time: a minute or two)..."
	$(PYTHON) -m venv --clear --without-pip $(VENV)
	# uv installs what pip would in seconds rather than a minute (and caches what it fetched):
	# this Python's pip brings it, at the version the lock was made with.
	$(PYTHON) -m pip --python $(BIN)/python install --quiet uv==$(UV_VERSION)
	# The runtime's locked versions first, checked by their hashes (the layer ships the same),
	# then the tools around them.
	$(UV_INSTALL) --python $(BIN)/python --quiet --require-hashes --no-deps -r layers/shared/requirements.txt
	# pip too: the layer's build (as `sam build` runs it) is tested with it.
	$(UV_INSTALL) --python $(BIN)/python --quiet -e '.[dev]' pip
	rm -f $(VENV)/.installed-*
	touch $@

# Modules in the order collected (the end-to-end tier first), not most tests first: the long
# drills start at once and the short unit modules fill the end.
test: install compiled  ## every tier, in parallel (a module's tests in one worker), with the coverage of the runtime and the tools
	$(BIN)/pytest --numprocesses $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder --cov --cov-report=term

# The project's own modules compiled once, up front, rather than by each worker at once.
compiled: install
	$(BIN)/python -m compileall -q -j 0 layers/shared/sora_relay tools/sora_relay_tools functions benchmarks

test-unit: install
	$(BIN)/pytest -m unit

test-integration: install
	$(BIN)/pytest -m integration

test-e2e: install
	$(BIN)/pytest -m e2e

test-infrastructure: install
	$(BIN)/pytest -m infrastructure

$(CHECKOV): | $(INSTALLED)
	$(BIN)/uv venv --quiet --python $(SCAN_PYTHON) $(SCAN_VENV)
	$(UV_INSTALL) --python $(SCAN_VENV)/bin/python --quiet checkov==$(CHECKOV_VERSION)
	ln -sf checkov $@

lint: install  ## ruff, mypy, cfn-lint, bandit and checkov (skips explained in .checkov.yaml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	# The type checks beside the template's and the security checks: on two cores, half the time.
	$(MAKE) --no-print-directory --jobs 2 --output-sync=target lint-types lint-template

lint-types: install
	$(BIN)/mypy

lint-template: install $(CHECKOV)
	$(BIN)/cfn-lint template.yaml
	$(BIN)/bandit --quiet --configfile pyproject.toml --recursive layers/shared/sora_relay tools functions benchmarks
	$(CHECKOV) --config-file .checkov.yaml --file template.yaml

# Resolved for the Lambda runtime (Python 3.13 on arm64), within what the dev tools allow (the
# SAM translator pins pydantic), so that the tests can run the very versions the layer ships.
LOCK_FLAGS := --python-version 3.13 --python-platform aarch64-manylinux2014 --quiet --no-annotate --custom-compile-command "make lock"

lock: install  ## pin the runtime's dependencies with hashes into layers/shared/requirements.txt
	$(BIN)/uv pip compile pyproject.toml --all-extras $(LOCK_FLAGS) -o $(VENV)/every-dependency.txt
	$(BIN)/uv pip compile pyproject.toml $(LOCK_FLAGS) --generate-hashes --constraint $(VENV)/every-dependency.txt -o layers/shared/requirements.txt

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

check: lint test  ## everything CI runs

schemas: install  ## regenerate events/schemas/ and docs/openapi.json from the code (a test fails when they are stale)
	$(BIN)/python -m sora_relay_tools.schemas events/schemas
	$(BIN)/python -m sora_relay_tools.openapi docs/openapi.json

bench: install  ## the eight benchmarks, each printing its table (minutes; not part of make test)
	cd benchmarks && ../$(BIN)/python submit_batch.py
	cd benchmarks && ../$(BIN)/python poll_sweep.py
	cd benchmarks && ../$(BIN)/python polling_policy.py
	cd benchmarks && ../$(BIN)/python archive.py --size-mib 32 --runs 5
	cd benchmarks && ../$(BIN)/python archive.py --size-mib 1024
	cd benchmarks && ../$(BIN)/python cold_start.py
	cd benchmarks && ../$(BIN)/python announce_lag.py
	cd benchmarks && ../$(BIN)/python cost.py
	cd benchmarks && ../$(BIN)/python line.py

build:  ## needs the AWS SAM CLI
	sam build

deploy: build
	sam deploy --guided

clean:
	rm -rf $(VENV) $(SCAN_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache out

run: install  ## the sample requests through the whole stack on this machine; videos in ./out/
	$(BIN)/sora-relay local run

up: install  ## a local stack that stays up (Ctrl-C stops it)
	$(BIN)/sora-relay local up

reliability: install  ## every fault suite in full, one table (crash at each outbound call, each provider fault)
	$(BIN)/python -m sora_relay_tools.faults
