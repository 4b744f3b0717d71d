# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
DEMO_DIR ?= demo-output
# Debian packages the tests use: PostgreSQL + PostGIS for the real pgstac API, Chromium for the
# web-map test, Node.js/npm for the map library. Installed only when running as root with apt.
DEBIAN_PACKAGES := postgresql postgresql-postgis chromium nodejs npm

.PHONY: install sysdeps web lint typecheck test demo bench docs clean

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install -q uv

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --extra dev --python $(PYTHON)
	touch $@

install: $(VENV)/.installed web

sysdeps:
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian packages: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  fi; \
	else echo "not root or no apt-get: tests needing PostgreSQL/PostGIS or Chromium will skip"; fi

web:
	@if [ -f tiler/web/Makefile ]; then $(MAKE) -s -C tiler/web; fi

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

test: sysdeps install lint typecheck
	$(BIN)/pytest

demo: install
	$(BIN)/lulc demo --out $(DEMO_DIR)

bench: install
	$(BIN)/python bench/run.py

docs: install
	$(BIN)/python -m service.settings_doc README.md infra/README.md

clean:
	rm -rf $(VENV) .tools $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
