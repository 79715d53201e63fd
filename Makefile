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

# WSClean is the default imager and the imaging tests run it; systemd-analyze checks the shipped units.
# Install them when we can (as root).
system-deps:
	@command -v wsclean >/dev/null 2>&1 && command -v systemd-analyze >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wsclean systemd; \
	  else \
	    echo "run 'sudo apt-get install wsclean systemd': the imaging and unit tests need them"; exit 1; \
	  fi; }
# The alerting tests run promtool (Debian: prometheus) and amtool (prometheus-alertmanager).
	@command -v promtool >/dev/null 2>&1 && command -v amtool >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	      prometheus prometheus-alertmanager; \
	  else \
	    echo "run 'sudo apt-get install prometheus prometheus-alertmanager': the alerting tests need them"; exit 1; \
	  fi; }
	@# The multi-host tests make network namespaces and veth pairs with ip (iproute2), as root.
	@command -v ip >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q iproute2; \
	  else \
	    echo "run 'sudo apt-get install iproute2': the multi-host tests need it"; exit 1; \
	  fi; }

# The dashboard's browser tests drive Debian's Chromium through Playwright (no browser download).
.PHONY: system-deps-chromium
system-deps: system-deps-chromium
system-deps-chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else \
	    echo "run 'sudo apt-get install chromium': the dashboard's browser tests need it"; exit 1; \
	  fi; }

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
