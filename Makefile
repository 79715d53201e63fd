# The two commands the README gives: `make demo` and `make test`.
# Each builds the virtual environment first when it is missing or older than pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench bench-peers schema system-deps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# Debian packages the tests need, installed as root (deploy/apt-needs.sh): WSClean, the default imager;
# systemd-analyze, which checks the shipped units; promtool and amtool for the alerting tests; ip
# (iproute2) for the multi-host tests' network namespaces; Chromium, which the dashboard's browser tests
# drive through Playwright (no browser download).
system-deps:
	@sh deploy/apt-needs.sh "the imaging, unit, multi-host and browser tests" \
	  wsclean:wsclean systemd-analyze:systemd ip:iproute2 chromium:chromium
	@sh deploy/apt-needs.sh --no-recommends "the alerting tests" \
	  promtool:prometheus amtool:prometheus-alertmanager

# The demo falls back to tclean when WSClean cannot be installed, so a failure here is not fatal.
demo: $(STAMP)
	-@$(MAKE) --no-print-directory system-deps
	$(BIN)/contimg demo $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: system-deps $(STAMP) lint
	$(BIN)/pytest $(ARGS)

# docs/schema.sql: the schema after every migration (tests/queue/test_schema.py says when it is stale).
schema: $(STAMP)
	$(BIN)/python -m absurd.schema_dump

bench: $(STAMP)
	$(BIN)/python -m bench.queue $(ARGS)

# PgQueuer is an optional extra: only this benchmark needs it.
bench-peers: $(STAMP)
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python -m bench.peers $(ARGS)
