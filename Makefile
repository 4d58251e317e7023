# partnero-bridge developer commands. `make run` and `make test` are all a newcomer needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTHON := $(shell scripts/find-python.sh)
export SAM_CLI_TELEMETRY := 0
PYTEST := $(BIN)/pytest -p no:cacheprovider
# Extra pytest options for every test target, e.g. make test PYTEST_ARGS="-k signup -x"
PYTEST_ARGS ?=
# Coverage through sys.monitoring (Python 3.12+): a few percent of the suite's time.
export COVERAGE_CORE := sysmon

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'
	@echo
	@echo '  PYTEST_ARGS="..."  pytest options for test, test-all, unit, integration, e2e (e.g. -k signup)'
	@echo '  BENCH_ARGS="..."   options of python -m bench (e.g. --quick)'
	@echo '  BRIDGE_PORT=...    and the other ports of make run: docs/local-stack.md'

$(STAMP): pyproject.toml requirements/constraints.txt
	@test -n "$(PYTHON)" || { echo "Python 3.13 is required (the Lambda runtime's version)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e '.[dev]'
	touch $(STAMP)

.PHONY: install
install: $(STAMP) ## create .venv with the package, the CLI and the dev tools

.PHONY: run
run: $(STAMP) ## start the local stack in the foreground (Ctrl-C stops it)
	@$(BIN)/partnero-bridge run

.PHONY: test
test: lint typecheck browser-deps test-all ## everything CI runs: lint, types, all tests, coverage

.PHONY: browser-deps
browser-deps: ## Debian's chromium and chromedriver, for the browser test
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	else \
		echo "the browser test needs chromium and chromium-driver (apt-get install as root)"; \
	fi

.PHONY: test-all
test-all: $(STAMP) ## every test (unit, integration, e2e, browser) and the coverage total
	$(PYTEST) --cov --cov-report= tests $(PYTEST_ARGS)
	@echo "coverage: $$($(BIN)/coverage report --format=total)% of the layer's, functions' and CLI's lines (make coverage: by file)"

.PHONY: coverage
coverage: $(STAMP) ## the last test run's coverage, file by file (fully covered files left out)
	$(BIN)/coverage report

.PHONY: unit
unit: $(STAMP) ## fast tests of pure code
	$(PYTEST) -m unit tests $(PYTEST_ARGS)

.PHONY: integration
integration: $(STAMP) ## handlers against moto and a fake Partnero
	$(PYTEST) -m integration tests $(PYTEST_ARGS)

.PHONY: e2e
e2e: $(STAMP) ## the local stack over real HTTP
	$(PYTEST) -m e2e tests $(PYTEST_ARGS)

.PHONY: lint
lint: $(STAMP) ## ruff (lint and format check)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

.PHONY: format
format: $(STAMP) ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

.PHONY: typecheck
typecheck: $(STAMP) ## mypy (strict) on the layer, the CLI and each function
	$(BIN)/mypy
	for fn in functions/*/ingest.py functions/*/process.py; do $(BIN)/mypy --strict "$$fn" || exit 1; done

.PHONY: bench
bench: $(STAMP) ## benchmarks: cold start, per-event overhead, remote calls, AWS cost per million events, package size, local throughput
	$(BIN)/python -m bench $(BENCH_ARGS)

.PHONY: build
build: $(STAMP) ## sam build (no container; needs python3.13, found above)
	PATH="$(dir $(PYTHON)):$$PATH" $(BIN)/sam build

.PHONY: clean
clean: ## remove build output and caches (keeps .venv)
	rm -rf .aws-sam .mypy_cache .ruff_cache .pytest_cache .hypothesis .coverage .coverage.*
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +
