# Lakelet developer commands. `make demo` and `make test` set everything up themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SPARK_STAMP := $(VENV)/.spark-installed

.DEFAULT_GOAL := help
.PHONY: help venv system-deps spark demo test test-fast lint bench bench-pollock clean

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

system-deps: ## install PostgreSQL, Java and the jars the Spark engine uses (Debian, as root)
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
		echo "installing Debian's postgresql for the integration tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }
	@missing=""; \
	command -v java >/dev/null 2>&1 || missing="$$missing default-jre-headless"; \
	test -f /usr/share/java/jarjar.jar || missing="$$missing libjarjar-java"; \
	test -f /usr/share/java/asm-commons.jar || missing="$$missing libasm-java"; \
	test -f /usr/share/java/sqlite-jdbc.jar || missing="$$missing libxerial-sqlite-jdbc-java"; \
	test -f /usr/share/java/postgresql.jar || missing="$$missing libpostgresql-jdbc-java"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian's$$missing for the Spark engine"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# pyspark (~350 MB) stays out of the dev extra: `make test` installs it here.
$(SPARK_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	@touch $(SPARK_STAMP)

spark: $(SPARK_STAMP) system-deps ## install the Spark engine and build its Iceberg runtime jar (offline)
	$(BIN)/python -m lakelet.jobs.engines.spark_runtime

demo: $(STAMP) ## run the vending-machine reference scenario in a throwaway project
	$(BIN)/lakelet demo

test: $(STAMP) system-deps spark ## run the test suite (starts real S3 API and PostgreSQL servers)
	$(BIN)/python -m pytest -n 2 -q

test-fast: $(STAMP) ## unit tests only: no services, nothing slow
	$(BIN)/python -m pytest -q -m "not integration and not slow"

lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

# The ingest benchmark compares with dlt and Spark and generates TPC-H data (bench extra).
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,spark,bench]'
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) spark ## benchmarks, printed as a table (LAKELET_BENCH_SF=0.1: quick)
	@command -v wrk >/dev/null 2>&1 || { echo "installing Debian's wrk for the gateway benchmark"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk || true; }
	$(BIN)/python benchmarks/run.py

bench-pollock: $(STAMP) ## messy-CSV benchmark (Pollock): our reader vs DuckDB auto-detection
	$(BIN)/python benchmarks/pollock/run.py

clean: ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
