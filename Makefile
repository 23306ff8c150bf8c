# SpyGlass: `make run` serves the app, `make test` runs every test. Both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools
BUN := $(TOOLS)/node_modules/.bin/bun
# axe-core, the accessibility engine the browser tests inject into every page (offline).
AXE := $(TOOLS)/node_modules/axe-core/axe.min.js
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SPYGLASS_PORT ?= 3000
# The address `make run` listens on: every interface by default (reachable from other
# machines); SPYGLASS_HOST=127.0.0.1 keeps it to this machine.
SPYGLASS_HOST ?= 0.0.0.0

export PATH := $(CURDIR)/$(TOOLS)/node_modules/.bin:$(PATH)
export REFLEX_USE_SYSTEM_BUN := 1
export REFLEX_CHECK_LATEST_VERSION := 0
export REFLEX_TELEMETRY_ENABLED := false
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: install run test lint bench chromium services clean screenshots

install: $(VENV)/.installed $(BUN) $(AXE)

# Python dependencies, pinned in pyproject.toml.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

# The benchmarks' peers (Celery, Dramatiq): `make bench` only, `make test` does without.
$(VENV)/.bench-installed: $(VENV)/.installed
	$(VENV)/bin/pip install --quiet -e '.[test,bench]'
	touch $@

# Reflex builds its frontend with bun; the npm registry ships it (no installer download).
$(BUN):
	npm install --prefix $(TOOLS) --no-audit --no-fund --loglevel=error bun@1.4.5

$(AXE):
	npm install --prefix $(TOOLS) --no-audit --no-fund --loglevel=error axe-core@4.14.1

# Debian's chromium for the browser tests (Playwright drives /usr/bin/chromium).
chromium:
	@command -v chromium >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# Debian's redis-server and postgresql for the multi-worker tests (the tests start them).
services:
	@command -v redis-server >/dev/null && ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq redis-server postgresql >/dev/null; }

run: install
	NPM_CONFIG_REGISTRY="$$(npm config get registry)" \
	  $(VENV)/bin/reflex run --env prod --single-port --frontend-port $(SPYGLASS_PORT) \
	  --backend-host $(SPYGLASS_HOST)

test: install chromium services
	NPM_CONFIG_REGISTRY="$$(npm config get registry)" $(PY) -m pytest

# The README's pictures: a server of its own with sample data, the main pages at 1440×900 and
# 390×844, written to docs/screenshots/.
screenshots: install chromium
	NPM_CONFIG_REGISTRY="$$(npm config get registry)" $(PY) -m tests.screenshots docs/screenshots

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy

bench: install chromium services $(VENV)/.bench-installed
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk >/dev/null; }
	$(PY) -m bench --profile-memory-rows 10000000
	$(PY) -m bench.cluster_bench
	$(PY) -m bench.executor_bench
	$(PY) -m bench.tools_bench
	NPM_CONFIG_REGISTRY="$$(npm config get registry)" $(PY) -m bench.page_bench

clean:
	rm -rf .web .states $(TOOLS) $(VENV)
