# Lakelet developer commands. `make demo` and `make test` set everything up themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv system-deps demo test test-fast lint bench bench-pollock clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
		|| { echo "Lakelet needs Python >= 3.11 (found: $(PYTHON))"; exit 2; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
		echo "python venv is missing; installing Debian's python3-venv"; \
		apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) ## create .venv and install Lakelet with its dev extras

system-deps: ## install the PostgreSQL server the integration tests start (Debian, as root)
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
		echo "installing Debian's postgresql for the integration tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }

demo: $(STAMP) ## run the vending-machine reference scenario in a throwaway project
	$(BIN)/lakelet demo

test: $(STAMP) system-deps ## run the test suite (starts real S3 API and PostgreSQL servers)
	$(BIN)/python -m pytest -n 2 -q

test-fast: $(STAMP) ## unit tests only: no services, nothing slow
	$(BIN)/python -m pytest -q -m "not integration and not slow"

lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

bench: $(STAMP) ## benchmarks, printed as a table
	$(BIN)/python benchmarks/run.py

bench-pollock: $(STAMP) ## messy-CSV benchmark (Pollock): our reader vs DuckDB auto-detection
	$(BIN)/python benchmarks/pollock/run.py

clean: ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
