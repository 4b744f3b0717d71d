# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
# uv trusts the machine's certificate store, as pip and npm do: behind a TLS-inspecting proxy its CA is only
# there, and uv's own bundle refused PyPI ("invalid peer certificate: UnknownIssuer") where pip went through.
export UV_SYSTEM_CERTS ?= 1
# uv installs packages without their bytecode, and where PYTHONDONTWRITEBYTECODE is set (this kind of machine)
# Python never writes it either: every `lulc` command then compiled scikit-learn, pandas and SciPy again (a
# refused config took 10.6 s, 3.0 s compiled). uv compiles them once at install, as the images do.
export UV_COMPILE_BYTECODE ?= 1
DEMO_DIR ?= demo-output
DEMO_HOST ?= 127.0.0.1
DEMO_PORT ?= 8080
# Debian packages the tests use, each installed only when what it provides is missing (a check per package):
# PostgreSQL + PostGIS for the real pgstac API, Chromium for the web-map test, npm for the map library,
# QGIS's Python API for the test that opens our map in QGIS (run by the system Python, /usr/bin/python3),
# binutils' readelf for the test that every image finds the shared libraries its wheels link.
define NEEDED_PACKAGES
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || echo postgresql; \
ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1 || echo postgresql-postgis; \
command -v chromium >/dev/null || echo chromium; \
command -v npm >/dev/null || echo nodejs npm; \
/usr/bin/python3 -c 'import qgis.core' >/dev/null 2>&1 || echo python3-qgis; \
command -v readelf >/dev/null || echo binutils
endef
# The demo needs only npm (the web map's library); the rest is for the tests.
define DEMO_PACKAGES
command -v npm >/dev/null || echo nodejs npm
endef
# Installs the missing packages of $(1) with apt-get when root, else says what the tests will skip.
define INSTALL_MISSING
	@missing="$$($(1))"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian packages:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else echo "not root or no apt-get; missing" $$missing": $(2)"; fi
endef

.PHONY: install sysdeps demo-sysdeps web lint typecheck test demo bench docs clean

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install -q uv

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --extra dev --quiet --python $(PYTHON)
	touch $@

install: $(VENV)/.installed web

# The demo needs only the three apps' extras (about 0.9 GB), not the test tools (dev: 0.7 GB more);
# --inexact keeps what `make test` installed.
$(VENV)/.demo-installed: pyproject.toml uv.lock | $(UV)
	@echo "installing the Python packages of the demo (about 0.9 GB on a fresh machine)"
	$(UV) sync --frozen --inexact --extra service --extra tiler --extra training --quiet --python $(PYTHON)
	touch $@

sysdeps:
	$(call INSTALL_MISSING,$(NEEDED_PACKAGES),tests that need them will skip)

demo-sysdeps:
	$(call INSTALL_MISSING,$(DEMO_PACKAGES),the web map needs npm for its library)

web:
	@if [ -f tiler/web/Makefile ]; then $(MAKE) -s -C tiler/web \
	  || echo "warning: the web map's library (Leaflet, from npm) was not installed: the map page will not draw"; fi

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

# The test files are spread over the machine's cores (pytest-xdist; a file stays on one worker, so its module
# fixtures are made once): the suite is about half CPU, half waiting for servers, browsers and subprocesses.
TEST_WORKERS ?= auto
test: sysdeps install lint typecheck
	$(BIN)/pytest -n $(TEST_WORKERS) --maxprocesses=4 --dist loadfile

demo: demo-sysdeps $(VENV)/.demo-installed web
	$(BIN)/lulc demo --out $(DEMO_DIR) --host $(DEMO_HOST) --port $(DEMO_PORT)

bench: install
	$(BIN)/python bench/run.py

docs: install
	$(BIN)/python -m lulc.settings_doc README.md infra/README.md

clean:
	rm -rf $(VENV) .tools $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
